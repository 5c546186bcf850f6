#!/usr/bin/env bash
# The rest of the GPU check: the steps scripts/gpu-check.sh did not finish
# within its budget (it says which). Same work directory, same single archive
# under $OUT, rewritten with everything so far. If the machine was handed
# back in between, the work directory is gone: pass the steps already done,
# from steps-done.txt in the archive that came back, as SKIP="a b c".
#   bash scripts/gpu-check-rest.sh
set -uo pipefail
work=${QS_WORK:-./gpu-work}
if [ ! -d "$work/steps" ] && [ -z "${SKIP:-}" ]; then
  echo "gpu-check-rest: no earlier work in $work (and no SKIP=): running every step" >&2
fi
exec bash "$(dirname "$0")/gpu-check.sh" "$@"
