#!/bin/sh
# The image's entry point, under tini: everything the container keeps is under /data, so a /data
# this user cannot write to (a bind mount of a host folder owned by someone else) is said in one
# line with the fix, before anything starts; then the command runs in this process's place.
set -eu
if [ ! -w /data ]; then
  uid=$(id -u)
  echo "enrich: error: /data is not writable by uid $uid, the user this container runs as: run it as the folder's owner (--user \"\$(id -u):\$(id -g)\") or give the folder to uid $uid (chown -R $uid DIR)" >&2
  exit 1
fi
exec "$@"
