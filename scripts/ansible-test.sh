#!/usr/bin/env bash
# The Ansible stage of the test suite (see test/ansible/run.sh): lint, a real rollout on
# this machine, a rolling update under load, a broken release, EC2 provisioning against
# moto_server. Ends with "ansible: N passed, M failed"; exits non-zero on any failure.
exec bash "$(dirname "${BASH_SOURCE[0]}")/../test/ansible/run.sh" "$@"
