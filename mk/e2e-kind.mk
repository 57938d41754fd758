# End-to-end on kind, for machines WITH Docker (developer laptops, CI runners with Docker).
.PHONY: e2e-kind e2e-kind-down

KIND_CLUSTER ?= thunderbolt-e2e

e2e-kind: install ## kind cluster + docker-built images + helm install + the demo (needs docker, kind, helm)
	KIND_CLUSTER=$(KIND_CLUSTER) bash hack/e2e-kind.sh

e2e-kind-down: ## delete the kind cluster made by e2e-kind
	kind delete cluster --name $(KIND_CLUSTER)
