#!/bin/bash
# [E] 10M events through gRPC, then clean restart timing, then 925k more + SIGKILL + restart timing.
# usage: e10.sh BINDIR PORT TAG
B=$1; P=$2; T=$3; D=/tmp/e10-$T; rm -rf $D; mkdir -p $D
$B/anxind --data $D/d --listen 127.0.0.1:$P > $D/log1 2>&1 &
SP=$!
for i in $(seq 100); do [ -f $D/d/dev-token ] && grep -q serving $D/log1 && break; sleep 0.1; done
ANXIN_TOKEN=$(cat $D/d/dev-token) $B/anxin --server http://127.0.0.1:$P bench --clients 4 --batch 8189 --count 10000000 --server-pid $SP --data $D/d > $D/bench1 2>&1
kill -TERM $SP; wait $SP
for r in 1 2 3; do
  s=$(date +%s%N); $B/anxind --data $D/d --listen 127.0.0.1:$P > $D/rs$r 2>&1 & SP=$!
  until grep -q serving $D/rs$r; do sleep 0.005; done; echo "clean restart $r: $(( ($(date +%s%N)-s)/1000000 )) ms RSS $(ps -o rss= -p $SP) KB"
  kill -TERM $SP; wait $SP
done
$B/anxind --data $D/d --listen 127.0.0.1:$P > $D/log2 2>&1 & SP=$!
until grep -q serving $D/log2; do sleep 0.01; done
ANXIN_TOKEN=$(cat $D/d/dev-token) $B/anxin --server http://127.0.0.1:$P bench --clients 4 --batch 8189 --count 925000 --workers 100 > $D/bench2 2>&1
kill -KILL $SP; wait $SP 2>/dev/null
s=$(date +%s%N); $B/anxind --data $D/d --listen 127.0.0.1:$P > $D/rs-crash 2>&1 & SP=$!
until grep -q serving $D/rs-crash; do sleep 0.005; done; echo "restart after SIGKILL: $(( ($(date +%s%N)-s)/1000000 )) ms"
grep -o "replayed=[0-9]*" $D/rs-crash | head -2
kill -TERM $SP; wait $SP
grep -E "events/s|RSS|latency" $D/bench1
