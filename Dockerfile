# syntax=docker/dockerfile:1
# meshmetric-operator image: built on Debian bookworm, run on distroless (glibc and CA
# certificates only: no shell, no package manager), as a non-root user.
#
#   hack/image.sh                     build it (docker, podman, nerdctl or buildah) and load it
#                                     into kind/k3d/minikube when asked
#
# The runtime image gets exactly the shared libraries the binary links beyond glibc: RUNTIME_LIBS
# below. The build stage checks that list against `ldd` and fails when they differ, and
# tests/e2e/chart_test.sh checks it against `ldd` of the binary built on the development machine
# (Debian bookworm too) without any container engine.

ARG BUILD_IMAGE=debian:bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/base-nossl-debian12:nonroot

FROM ${BUILD_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake pkg-config \
      libmicrohttpd-dev libgnutls28-dev libssl-dev libjansson-dev libcurl4-openssl-dev \
      libcmocka-dev libyaml-dev libpcre2-dev uthash-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build -j"$(nproc)" --target meshmetric-operator

# Sonames `ldd /build/meshmetric-operator` lists, minus glibc's (the runtime image has glibc).
ARG RUNTIME_LIBS="libbrotlicommon.so.1 libbrotlidec.so.1 libcom_err.so.2 libcrypto.so.3 libcurl.so.4 libffi.so.8 libgmp.so.10 libgnutls.so.30 libgssapi_krb5.so.2 libhogweed.so.6 libidn2.so.0 libjansson.so.4 libk5crypto.so.3 libkeyutils.so.1 libkrb5.so.3 libkrb5support.so.0 liblber-2.5.so.0 libldap-2.5.so.0 libmicrohttpd.so.12 libnettle.so.8 libnghttp2.so.14 libp11-kit.so.0 libpcre2-8.so.0 libpsl.so.5 librtmp.so.1 libsasl2.so.2 libssh2.so.1 libssl.so.3 libtasn1.so.6 libunistring.so.2 libyaml-0.so.2 libz.so.1 libzstd.so.1"
ARG GLIBC_LIBS="linux-vdso.so.1 linux-gate.so.1 libc.so.6 libm.so.6 libpthread.so.0 libdl.so.2 librt.so.1 libresolv.so.2 ld-linux-x86-64.so.2 ld-linux-aarch64.so.1"
RUN set -eu; \
    multiarch=$(gcc -dumpmachine); \
    ldd /build/meshmetric-operator | awk '{print $1}' | sed 's|.*/||' | sort -u > /tmp/ldd; \
    printf '%s\n' $GLIBC_LIBS | sort -u > /tmp/glibc; \
    comm -23 /tmp/ldd /tmp/glibc > /tmp/linked; \
    printf '%s\n' $RUNTIME_LIBS | sort -u > /tmp/listed; \
    if ! diff /tmp/listed /tmp/linked; then \
      echo "RUNTIME_LIBS does not match ldd (< listed, > linked): update the Dockerfile" >&2; exit 1; \
    fi; \
    mkdir -p "/out/usr/lib/$multiarch" /out/usr/local/bin; \
    for so in $RUNTIME_LIBS; do cp -L "/usr/lib/$multiarch/$so" "/out/usr/lib/$multiarch/$so"; done; \
    install -m 0755 /build/meshmetric-operator /out/usr/local/bin/meshmetric-operator

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/ /
# distroless "nonroot" (65532:65532); the chart's securityContext runs as the same user.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/meshmetric-operator"]
CMD ["serve"]
