#!/bin/sh
# lit's %mpirun: mpirun with a TMPDIR of its own, under lit's (removed when lit ends). Each
# mpirun creates and removes OpenMPI's session directory (TMPDIR/ompi.HOST.UID), and two
# started at once by parallel tests race on it ("mkdir ... File exists").
dir=$(mktemp -d "${TMPDIR:-/tmp}/mpirun.XXXXXX") || exit 2
TMPDIR=$dir exec mpirun "$@"
