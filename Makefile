# The two commands of the README. Each sets up what it needs (cached after the first run).
.PHONY: demo test env models clean

demo:
	bash scripts/run_demo.sh

test:
	bash scripts/run_tests.sh

env:
	bash scripts/setup_env.sh

clean:
	rm -rf build install log .pytest_cache
