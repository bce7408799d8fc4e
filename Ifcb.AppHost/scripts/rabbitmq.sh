#!/usr/bin/env bash
# Runs an isolated RabbitMQ node (Debian's rabbitmq-server, no Docker) on loopback ports chosen by the AppHost.
#
# Inputs (environment): RABBITMQ_NODE_PORT (AMQP), RABBITMQ_MANAGEMENT_PORT (management UI/API),
# ERL_EPMD_PORT (this node's private epmd), RABBITMQ_DIST_PORT (Erlang distribution), IFCB_STATE_DIR (optional: the
# broker's data is kept there across restarts; otherwise a temporary directory is used and deleted on exit),
# IFCB_RABBITMQ_CONSUMER_TIMEOUT_MS (optional: how long a consumer may hold an unacknowledged message; default 30 min).
#
# Everything listens on 127.0.0.1 only. epmd is started here as our own child (never the shared system daemon) and
# a watchdog stops epmd and the broker when this script goes away for any reason, even SIGKILL, so no beam.smp or
# epmd outlives the platform or a test run.
set -euo pipefail

: "${RABBITMQ_NODE_PORT:?}" "${RABBITMQ_MANAGEMENT_PORT:?}" "${ERL_EPMD_PORT:?}" "${RABBITMQ_DIST_PORT:?}"

server=/usr/lib/rabbitmq/bin/rabbitmq-server
if [[ ! -x $server ]]; then
  echo "rabbitmq-server is not installed: run 'apt-get install -y rabbitmq-server' (see README.md)" >&2
  exit 69
fi

if [[ -n "${IFCB_STATE_DIR:-}" ]]; then
  # Persistent: one node whose durable queues (queued training jobs, say) survive a restart of the platform.
  state=$IFCB_STATE_DIR/rabbitmq
  node=ifcb@localhost
  remove_state=false
else
  state=$(mktemp -d -t ifcb-rabbitmq.XXXXXX)
  node=ifcb$RABBITMQ_NODE_PORT@localhost
  remove_state=true
fi
mkdir -p "$state"/{mnesia,log,home}
: > "$state/rabbitmq-env.conf"
echo "[rabbitmq_management]." > "$state/enabled_plugins"
cat > "$state/rabbitmq.conf" <<CONF
listeners.tcp.1 = 127.0.0.1:$RABBITMQ_NODE_PORT
management.tcp.ip = 127.0.0.1
management.tcp.port = $RABBITMQ_MANAGEMENT_PORT
loopback_users.guest = true
# RabbitMQ's own default (30 min). Jobs do not depend on it: a worker acknowledges a job's message once it holds the
# job's lease (see JobExecutor); the end-to-end tests lower it to 15 s to prove that.
consumer_timeout = ${IFCB_RABBITMQ_CONSUMER_TIMEOUT_MS:-1800000}
log.console = true
log.console.level = warning
log.file = false
CONF

export HOME=$state/home
export RABBITMQ_CONF_ENV_FILE=$state/rabbitmq-env.conf
export RABBITMQ_CONFIG_FILE=$state/rabbitmq.conf
export RABBITMQ_ENABLED_PLUGINS_FILE=$state/enabled_plugins
export RABBITMQ_MNESIA_BASE=$state/mnesia
export RABBITMQ_LOG_BASE=$state/log
export RABBITMQ_LOGS=-
export RABBITMQ_PID_FILE=$state/rabbit.pid
export RABBITMQ_NODENAME=$node
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} -kernel inet_dist_listen_min $RABBITMQ_DIST_PORT -kernel inet_dist_listen_max $RABBITMQ_DIST_PORT"

# A restart (the dashboard's Restart, the chaos tests') can start this script while its predecessor is still shutting
# down, or right after the orchestrator SIGKILLed it and before its watchdog has cleaned up. Then the new epmd cannot
# bind, or the node name is still taken, and the broker stays down. Whatever runs on this resource's own epmd port can
# only be that predecessor: ask its broker for a clean shutdown (durable queues are flushed), kill what remains after
# 20 s, and wait for every port to be free before starting.
predecessors() {
  pgrep -f "beam\.smp.* -epmd_port $ERL_EPMD_PORT( |\$)" || true
  pgrep -f "^epmd -port $ERL_EPMD_PORT " || true
}
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [[ -n "$(predecessors)" ]]; then
  echo "a previous broker on epmd port $ERL_EPMD_PORT is still running; stopping it first" >&2
  pkill -TERM -f "beam\.smp.* -epmd_port $ERL_EPMD_PORT( |\$)" 2>/dev/null || true
  for _ in $(seq 1 80); do pgrep -f "beam\.smp.* -epmd_port $ERL_EPMD_PORT( |\$)" >/dev/null || break; sleep 0.25; done
  for pid in $(predecessors); do kill -KILL "$pid" 2>/dev/null || true; done
fi
for port in "$ERL_EPMD_PORT" "$RABBITMQ_DIST_PORT" "$RABBITMQ_NODE_PORT" "$RABBITMQ_MANAGEMENT_PORT"; do
  for _ in $(seq 1 120); do listening "$port" || break; sleep 0.25; done
  if listening "$port"; then
    echo "port $port on 127.0.0.1 is still in use 30 s after the previous broker stopped; not starting" >&2
    exit 75
  fi
done

# epmd stays in the foreground (its pid is ours to stop). The broker runs in a session of its own (setsid execs in
# place, so $! is its process group), and stopping it signals only that group: a predecessor's late clean-up can
# never reach the broker of the instance that replaced it.
epmd -port "$ERL_EPMD_PORT" -address 127.0.0.1 &
epmd_pid=$!
setsid "$server" &
broker_pid=$!
self=$$

stop_all() {
  # The broker's own script turns TERM into a clean shutdown; give it 10 s, then make sure.
  kill -TERM "$broker_pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$broker_pid" 2>/dev/null || break; sleep 0.25; done
  kill -KILL -- "-$broker_pid" 2>/dev/null || true
  kill -KILL "$epmd_pid" 2>/dev/null || true
  if $remove_state; then rm -rf "$state"; fi
}

# Watchdog: survives a SIGKILL of this script and then cleans up after it.
(
  trap '' TERM INT HUP
  while kill -0 "$self" 2>/dev/null; do sleep 1; done
  kill -TERM "$broker_pid" 2>/dev/null || true
  for _ in $(seq 1 20); do kill -0 "$broker_pid" 2>/dev/null || break; sleep 0.25; done
  kill -KILL -- "-$broker_pid" 2>/dev/null || true
  kill -KILL "$epmd_pid" 2>/dev/null || true
  if $remove_state; then rm -rf "$state"; fi
) </dev/null >/dev/null 2>&1 &

trap 'stop_all; exit 0' TERM INT HUP
wait -n "$broker_pid" "$epmd_pid" || true
echo "rabbitmq or epmd exited unexpectedly" >&2
stop_all
exit 1
