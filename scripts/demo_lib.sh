# Shared by scripts/demo.sh and scripts/demo_unirl.sh (sourced, not run): the settings both read from the
# environment, the output-folder guard and the run environment. The caller sets REPO (the repo root), OUT (the output
# folder, maybe relative to where the user called it) and STEPS, then sources this file before any cd.

MARKER=.pairuni-demo-output
case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac  # relative to where the user called us, before demo_prepare's cd
NPROC=${DEMO_NPROC:-2}
SEED=${DEMO_SEED:-0}  # the training seed; the toy checkpoint and the data stay the same
TIMEOUT=${DEMO_TIMEOUT:-1200}
PYTHON=${PYTHON:-python}
TOY_DIR=${DEMO_TOY_DIR:-$REPO/.cache/${TOY_CACHE:-toy-janus}}  # TOY_CACHE: the caller's toy model

# Refuse to clear a folder no demo created (it would hold the marker), a symlink (demo_prepare would replace the
# link by a folder), the folder the user is in or one holding the repo (DEMO_OUT=.), and a place that cannot be
# written (probed with a temporary folder); prints why and returns 1.
demo_check_out_dir() {
    if [ -L "$OUT" ]; then
        echo "[demo] DEMO_OUT=$OUT is a symlink; the demo would replace it with a folder. Set DEMO_OUT to the" \
            "folder it points to ($(readlink -f "$OUT")) or to a new folder." >&2
        return 1
    fi
    local resolved
    resolved=$(realpath -m "$OUT")
    case "$PWD/" in "$resolved"/*)
        echo "[demo] DEMO_OUT=$OUT is the folder you are in (or holds it); the demo clears DEMO_OUT first." \
            "Set DEMO_OUT to a new folder, e.g. DEMO_OUT=./demo_output." >&2
        return 1 ;;
    esac
    case "$REPO/" in "$resolved"/*)
        echo "[demo] DEMO_OUT=$OUT holds the repository; the demo clears DEMO_OUT first. Set DEMO_OUT to a new folder." >&2
        return 1 ;;
    esac
    local parent probe
    parent=$(dirname "$resolved")
    while [ ! -d "$parent" ]; do parent=$(dirname "$parent"); done
    if ! probe=$(mktemp -d "$parent/.pairuni-demo-probe.XXXXXX" 2>/dev/null) || ! rmdir "$probe"; then
        echo "[demo] DEMO_OUT=$OUT cannot be written ($parent is not writable). Set DEMO_OUT to a folder you can" \
            "write to." >&2
        return 1
    fi
    if [ -e "$OUT" ] && [ ! -d "$OUT" ]; then
        echo "[demo] DEMO_OUT=$OUT exists and is not a folder; refusing to touch it. Set DEMO_OUT to a new folder." >&2
        return 1
    fi
    if [ -d "$OUT" ] && [ -n "$(ls -A "$OUT")" ] && [ ! -f "$OUT/$MARKER" ]; then
        echo "[demo] DEMO_OUT=$OUT is not empty and was not created by the demo (no $MARKER);" \
            "refusing to delete it. Set DEMO_OUT to a new or empty folder." >&2
        return 1
    fi
}

# cd to the repo, export the offline / thread / DeepSpeed-build environment, and start OUT afresh with the marker.
demo_prepare() {
    cd "$REPO"
    export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
    export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
    # DeepSpeed JIT-builds small ops here; an interrupted build leaves a lock file that hangs every later run.
    export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-$REPO/.torch_extensions}
    mkdir -p "$TORCH_EXTENSIONS_DIR"
    find "$TORCH_EXTENSIONS_DIR" -name lock -type f -delete
    rm -rf "$OUT"
    mkdir -p "$OUT"
    touch "$OUT/$MARKER"
}
