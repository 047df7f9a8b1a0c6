// Package image holds the end-to-end test of proxyd's container image: the
// Dockerfile at the repository root, built without a registry by
// hack/image.sh (make image). See README.md for building and pushing it.
//
// The test builds the image and runs proxyd and the datapaths' tools in it
// with podman. It takes minutes and needs root, so it runs only with
// LBKIT_E2E=1.
package image
