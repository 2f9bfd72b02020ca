DROP TABLE patient_labels;
