DROP TABLE export_job_patients;
DROP TABLE export_files;
DROP TABLE export_jobs;
