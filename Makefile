# Every target creates .venv and installs what it needs: a fresh clone needs nothing else.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test faults bench lint clean package wheels

setup:
	@scripts/venv.sh

demo: setup
	$(VENV)/bin/sluice demo

# The Lambda wheels of requirements.txt for the runtime .chalice/config.json declares,
# downloaded once (again when requirements.txt changes) into .wheels/: `make package`
# and the packaged-zip test build from there, so the tests never reach the network.
wheels: setup
	@$(PY) infra/wheels.py > /dev/null

# The packaged-zip test fails (never skips) here when the wheelhouse is missing.
test: setup wheels
	SLUICE_REQUIRE_WHEELHOUSE=1 $(PY) -m pytest -q

# The fault-injection suite alone; its summary line comes last (tests/faults/run.py).
faults: setup
	$(PY) tests/faults/run.py

bench: setup wheels
	$(PY) bench/run.py

# CloudFormation (infra/ merged into Chalice's template) and Terraform for every stage,
# under out/package/<stage>/; no AWS credentials needed. See docs/deployment.md.
package: setup wheels
	$(PY) infra/package.py --wheelhouse $$($(PY) infra/wheels.py) --out out/package
	$(VENV)/bin/cfn-lint --non-zero-exit-code error out/package/*/cloudformation/sam.yaml out/package/*/member/member.yaml

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .sluice .wheels
