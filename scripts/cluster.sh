# Sourced by the measurement scripts. start_cluster BIN DIR [SERVER FLAGS...]
# starts three quorumkv server processes on 127.0.0.1 (HTTP 25081-25083,
# RPC 25071-25073, gossip 25901-25903), data and logs under DIR, and
# records their PIDs in the pids array; stop_cluster kills them and waits.
# ENDPOINTS lists the HTTP addresses for `quorumkv bench --endpoints`.
ENDPOINTS=127.0.0.1:25081,127.0.0.1:25082,127.0.0.1:25083
pids=()

start_cluster() {
	local bin=$1 dir=$2
	shift 2
	local i join
	for i in 1 2 3; do
		join=()
		[ "$i" -gt 1 ] && join=(--join 127.0.0.1:25901)
		"$bin" server --id "n$i" --data "$dir/n$i" --http "127.0.0.1:2508$i" --rpc "127.0.0.1:2507$i" \
			--gossip "127.0.0.1:2590$i" --log-level warn --insecure "${join[@]}" "$@" >"$dir/log$i" 2>&1 &
		pids+=($!)
		sleep 1
	done
	sleep 3
}

stop_cluster() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
