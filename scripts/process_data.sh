#!/bin/bash
# Align a raw face dataset with its 5-point landmark list (the seed CosFace process_data.sh step):
#   bash scripts/process_data.sh SRC_ROOT LANDMARK_LIST OUT_ROOT [HEIGHT WIDTH]
# e.g. bash scripts/process_data.sh data/CASIA-WebFace data/CASIA-WebFace/casia_landmark.txt \
#          data/CASIA-WebFace-112x96            (112 112 for the ArcFace template)
# LANDMARK_LIST is a sphereface list (relpath label x1 y1 ... x5 y5). When it does not exist, SRC_ROOT must be an
# identity-folder tree (SRC_ROOT/<identity>/<image>) and the list is made first by MTCNN detection
# (tools/detect_landmarks.py --labels; resumable; DETECT_WORKERS sets its processes). Writes OUT_ROOT/ (aligned
# images), OUT_ROOT.txt (relpath label: train with list_format plain, train_root OUT_ROOT) and OUT_ROOT_report.json
# (images that failed). Uses every core; re-running resumes. Then check it: tools/check_dataset.py.
set -euo pipefail
if [ $# -lt 3 ]; then
    sed -n '2,11p' "$0"
    exit 2
fi
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -f "$2" ]; then
    echo "$2 not found: detecting faces and landmarks in $1 first (tools/detect_landmarks.py)" >&2
    "${PYTHON:-python}" "$ROOT_DIR/tools/detect_landmarks.py" --root "$1" --labels --output "$2" \
        ${DETECT_WORKERS:+--workers "$DETECT_WORKERS"}
fi
"${PYTHON:-python}" "$ROOT_DIR/tools/align_dataset.py" --src_root "$1" --list "$2" --out_root "$3" \
    --image_size "${4:-112}" "${5:-96}"
