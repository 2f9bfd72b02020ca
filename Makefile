# Custodian developer commands. `make` alone lists them.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help
CARGO ?= cargo

.PHONY: help run test bench faults load detect-eval build fmt fmt-check lint openapi api-check clean-data deps

help: ## List the targets
	@echo "Custodian: make <target>"
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

deps: ## Install/start what is missing (Debian packages, Rust, PostgreSQL, Redis)
	@scripts/ensure-deps.sh

run: ## Build (release), start all six services, load demo data; Ctrl-C stops them
	@scripts/run.sh

test: ## Build every binary (debug) and run every test of the workspace
	@scripts/test.sh

faults: ## Fault harness: kill every service, Redis and PostgreSQL under load, prove nothing was lost
	@scripts/faults.sh

bench: ## Throughput/latency of creates and reads vs raw PostgreSQL (writes var/bench/results.md)
	@scripts/bench.sh

detect-eval: ## The anomaly detector over the README's 37 simulated hospitals, both modes (SETS=quick|seeds|shapes|short|independent|network|academic; var/detect-eval/)
	@scripts/detect-eval.sh $(or $(SETS),seeds)

build: ## cargo build --workspace --bins (debug; RELEASE=1 for release)
	$(CARGO) build --workspace --bins $(if $(RELEASE),--release,)

fmt: ## Format the code (cargo fmt --all)
	$(CARGO) fmt --all

fmt-check: ## Check formatting without changing files
	$(CARGO) fmt --all -- --check

lint: ## Clippy on every target, warnings are errors
	$(CARGO) clippy --workspace --all-targets -- -D warnings

openapi: ## Regenerate openapi/openapi.json
	UPDATE_OPENAPI=1 $(CARGO) test -p integration-tests --test openapi

api-check: ## schemathesis (all checks) against the whole suite through the gateway (var/api-check/)
	@scripts/api-check.sh

clean-data: ## Drop the local databases (custodian_*), this suite's Redis streams and var/ (keeps target/)
	@scripts/clean-data.sh

load: ## FHIR at scale: load 10,000 then 1,000,000 resources, measure searches, $everything, $export, ingest (var/load/results.md)
	@scripts/load.sh
