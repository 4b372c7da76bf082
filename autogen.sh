#!/bin/sh
# autogen.sh - create configure and the Makefile templates from a git checkout
set -e
cd "$(dirname "$0")"
mkdir -p build-aux m4
autoreconf --force --install --verbose
echo "Now run ./configure && make"
