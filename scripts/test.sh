#!/usr/bin/env bash
# The whole test suite, from a fresh clone on Debian with Rust installed.
# Installs and starts what the tests need, then runs lints and every test.
# .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# What the tests need from the machine:
# - root, to mount a small tmpfs for the full-disk test (tests/it/store_faults.rs);
# - mount/umount (util-linux) and python3 (bench/ingress.sh reads the journal);
# - room for ~3,500 sockets in the connection-hygiene test;
# - a real SMTP server for the email tests: aiosmtpd, from PyPI
#   (tests/support/smtp_server.py runs it on a free loopback port);
# - headless Chromium and Node with puppeteer-core (from npm, pinned by
#   tests/dashboard/package-lock.json) for the dashboard test.
if [ "$(id -u)" != 0 ]; then
  echo "scripts/test.sh: the full-disk test mounts a tmpfs and needs root" >&2
  exit 1
fi
need=()
command -v mount >/dev/null || need+=(mount)
command -v python3 >/dev/null || need+=(python3)
command -v chromium >/dev/null || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check aiosmtpd
fi
if [ ! -d tests/dashboard/node_modules/puppeteer-core ]; then
  npm ci --prefix tests/dashboard --no-audit --no-fund --loglevel=error
fi
ulimit -n 65536 2>/dev/null || ulimit -n 20000 2>/dev/null || true

cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo nextest run --locked --no-fail-fast
