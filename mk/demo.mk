# First-run experience: `make demo` on a fresh machine (see docs/quickstart.md).
.PHONY: up down demo demo-status crd-reference

DEMO_NAMESPACE ?= thunderbolt-demo

up: install ## local cluster + images + CRDs + MLflow, S3 (moto) and the operator as host processes
	bash hack/up.sh

down: ## stop what `make up` started, then the cluster (make cluster-down)
	bash hack/down.sh

demo: install up ## iris search with spectral_norm -> best model served -> V2 inference -> comparison
	DEMO_NAMESPACE=$(DEMO_NAMESPACE) bash hack/demo.sh

demo-status: ## the demo's pipeline view, once
	.venv/bin/thunderbolt describe experiment iris-sn -n $(DEMO_NAMESPACE) --kubeconfig .cluster/kubeconfig

crd-reference: install ## regenerate docs/crd-reference.md from the API models
	$(PY) hack/gen_crd_reference.py
