extends Node
## The cost of a durable request against a plain one (rust/tools/bench/outbox_runs.rs):
## N POSTs one after another through HTTPPool.request, then N through
## HTTPPool.request_durable (committed before it returns), then N more with
## outbox_sync_write off (committed in the background), timing the call on the main thread and the time until the
## task completed. Prints one line `BENCH {json}` and quits.
##
## Arguments: --url=URL --store=PATH --requests=N

const Proc := preload("res://bench/proc_info.gd")

var args := {}


func _ready() -> void:
	for arg in OS.get_cmdline_user_args():
		var parts := arg.trim_prefix("--").split("=", true, 1)
		args[parts[0]] = parts[1] if parts.size() > 1 else ""
	var line := {"mode": "outbox", "netkit_library": Proc.mapped_library("libnetkit"), "error": ""}
	var pool := HTTPPool.new()
	pool.outbox_path = args.get("store", "user://outbox_bench.redb")
	add_child(pool)
	var url: String = args.get("url", "")
	var n := int(args.get("requests", "200"))
	var body := {"player": "bench", "score": 12345, "inventory": ["sword", "shield", "potion"]}
	# Warm up the connection and open the store outside the figures.
	await pool.request(HTTPClient.METHOD_POST, url, body).completed
	await pool.request_durable(HTTPClient.METHOD_POST, url, body).completed
	for mode in ["plain", "durable", "durable_background"]:
		pool.outbox_sync_write = mode != "durable_background"
		var call_us: Array[float] = []
		var latency_ms: Array[float] = []
		for i in n:
			var t0 := Time.get_ticks_usec()
			var task: HTTPTask
			if mode == "plain":
				task = pool.request(HTTPClient.METHOD_POST, url, body)
			else:
				task = pool.request_durable(HTTPClient.METHOD_POST, url, body)
			call_us.append(float(Time.get_ticks_usec() - t0))
			var res: HTTPResponse = await task.completed
			latency_ms.append(float(Time.get_ticks_usec() - t0) / 1000.0)
			if not res.ok:
				line["error"] = "%s request failed: %s" % [mode, res.error_message]
				break
		line[mode + "_call_us_p50"] = _pct(call_us, 0.5)
		line[mode + "_call_us_p99"] = _pct(call_us, 0.99)
		line[mode + "_latency_ms_p50"] = _pct(latency_ms, 0.5)
		line[mode + "_latency_ms_p99"] = _pct(latency_ms, 0.99)
	line["requests"] = n
	print("BENCH ", JSON.stringify(line))
	get_tree().quit(0)


func _pct(values: Array[float], q: float) -> float:
	if values.is_empty():
		return -1.0
	var sorted := values.duplicate()
	sorted.sort()
	return sorted[mini(sorted.size() - 1, int(q * sorted.size()))]
