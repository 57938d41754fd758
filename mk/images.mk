# Local images without Docker: debootstrap base + buildah, imported into the cluster's containerd.
.PHONY: images image-base

IMAGE_VERSION ?= 0.1.0
# extra build args for the project images, e.g. IMAGE_BUILD_ARGS="TORCH_INDEX_URL=https://pypi.org/simple"
IMAGE_BUILD_ARGS ?=
_image_args := $(foreach a,$(IMAGE_BUILD_ARGS),--build-arg $(a))

image-base: cluster ## localhost/thunderbolt-base:bookworm (debootstrap + buildah), imported
	bash hack/images/base.sh

images: image-base ## build thunderbolt-trainer and thunderbolt-operator images (when their Dockerfiles exist) and import them
	@if [ -f trainer-image/Dockerfile ]; then bash hack/images/build.sh trainer-image thunderbolt-trainer:$(IMAGE_VERSION) $(_image_args); else echo "no trainer-image/Dockerfile yet: skipped"; fi
	@if [ -f operator/Dockerfile ]; then bash hack/images/build.sh operator thunderbolt-operator:$(IMAGE_VERSION) $(_image_args); else echo "no operator/Dockerfile yet: skipped"; fi
