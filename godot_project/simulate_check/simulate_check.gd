## An unmodified game under `NETKIT_SIMULATE`, driven by tests/addon/simulate_env.rs: one GET
## through an HTTPPool, then `SIMULATE_CHECK done <ms> ok=<bool>` and quit.
extends Node


func _ready() -> void:
	var url := ""
	for arg in OS.get_cmdline_user_args():
		if arg.begins_with("--url="):
			url = arg.trim_prefix("--url=")
	var pool := HTTPPool.new()
	pool.base_url = url
	add_child(pool)
	var started := Time.get_ticks_msec()
	var res: HTTPResponse = await pool.fetch("/json").completed
	print("SIMULATE_CHECK done %d ok=%s" % [Time.get_ticks_msec() - started, res.ok])
	get_tree().quit()
