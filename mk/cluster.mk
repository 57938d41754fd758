# Local single-node Kubernetes 1.20 from Debian packages (see docs/local-cluster.md).
.PHONY: cluster cluster-down cluster-status k8s-binaries

cluster: ## start (or confirm) the local cluster; writes .cluster/kubeconfig (context thunderbolt-local)
	bash hack/cluster/up.sh

cluster-down: ## stop every cluster process and remove .cluster/ state (binary cache stays)
	bash hack/cluster/down.sh

cluster-status: ## show nodes and pods of the local cluster
	@test -s .cluster/kubeconfig || { echo "no cluster: run 'make cluster'"; exit 1; }
	.cluster/bin/kubectl --kubeconfig .cluster/kubeconfig get nodes -o wide
	.cluster/bin/kubectl --kubeconfig .cluster/kubeconfig get pods -A -o wide

k8s-binaries: ## build (or find cached) Kubernetes 1.20.2 binaries from Debian's source package
	bash hack/cluster/build-k8s.sh
