#!/usr/bin/env bash
# Stops the stack that up.sh started in DIR (the watchdog of bai-testkit's realstack module
# runs this when its test process ends; by hand: down.sh DIR). DIR/pids/*.pid hold
# "PID STARTTIME" of process-group leaders; each group and every descendant of its members
# (each sshd connection calls setsid(), so leaves the group) gets SIGTERM, and SIGKILL when
# still there after 15 s. A leader whose start time differs is a reused pid: left alone.
set -u
dir=${1:?usage: down.sh DIR}
[ -d "$dir/pids" ] || exit 0
# "pid ppid pgrp" of every process.
table() {
  local s line rest
  for s in /proc/[0-9]*/stat; do
    { read -r line <"$s"; } 2>/dev/null || continue
    rest=${line##*) }
    set -- $rest
    [ "$1" = Z ] && continue
    s=${s#/proc/}
    echo "${s%/stat} $2 $3"
  done
}
# Our process groups: leader alive with its recorded start time, or leader gone but members left.
groups() {
  local f pid st now
  for f in "$dir"/pids/*.pid; do
    [ -f "$f" ] || continue
    read -r pid st <"$f" || continue
    if [ -r "/proc/$pid/stat" ]; then
      now=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f20)
      [ -n "$st" ] && [ "$now" != "$st" ] && continue
    fi
    echo "$pid"
  done
}
targets() {
  local t g out=" " changed=1 pid ppid pgrp
  t=$(table)
  for g in $(groups); do
    while read -r pid ppid pgrp; do [ "$pgrp" = "$g" ] && out+="$pid "; done <<<"$t"
  done
  while [ $changed = 1 ]; do
    changed=0
    while read -r pid ppid pgrp; do
      case "$out" in *" $ppid "*) case "$out" in *" $pid "*) ;; *) out+="$pid "; changed=1 ;; esac ;; esac
    done <<<"$t"
  done
  echo $out
}
pids=$(targets)
[ -z "$pids" ] && exit 0
kill -s TERM $pids 2>/dev/null
for _ in $(seq 150); do
  left=""
  for p in $pids; do
    [ "$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1)" = "" ] && continue
    [ "$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1)" = Z ] && continue
    left+="$p "
  done
  [ -z "$left" ] && exit 0
  sleep 0.1
done
kill -s KILL $left 2>/dev/null
exit 0
