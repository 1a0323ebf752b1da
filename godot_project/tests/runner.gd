extends Node
## In-engine test runner: the project's main scene (res://tests/runner.tscn).
##
##     godot --headless --path godot_project -- --filter=test_http --http-url=...
##
## Finds res://tests/**/test_*.gd (sorted by path), and for every `func test_*`
## in a file (in source order) creates a fresh instance of the script, adds it
## under this node, awaits the method (with a timeout), then frees the node.
## Output, parsed by rust/godot_runner/suite.rs (check_suite):
##     --- run test_http.gd::test_get_json               (before each test)
##     test test_http.gd::test_get_json ... ok           (after each test)
##     test test_http.gd::test_bad_url ... FAILED: <first failure> (+N more)
##     3 passed, 1 failed                                (last, alone on its line)
## then quits with 0 when every test passed and at least one ran, else 1.
##
## User arguments (after `--`), all optional:
##     --filter=SUBSTR     run only tests whose "file::method" contains SUBSTR
##     --test-timeout=S    default per-test timeout in seconds (else 20; a file's
##                         `const TIMEOUT := 30.0` overrides both)
## Every other `--key=value` is for the tests: NetkitTest.env("key").

const TESTS_DIR := "res://tests"
const DEFAULT_TIMEOUT := 20.0
const BaseTest := preload("res://tests/netkit_test.gd")

var _passed := 0
var _failed := 0
var _test_name_re := RegEx.create_from_string("(?m)^func\\s+(test_\\w*)\\s*\\(")


func _ready() -> void:
	_run_all.call_deferred()


func _run_all() -> void:
	var filter := BaseTest.env("filter")
	var default_timeout := DEFAULT_TIMEOUT
	if BaseTest.has_env("test-timeout"):
		default_timeout = BaseTest.env("test-timeout").to_float()
	var files := _find_test_files(TESTS_DIR)
	files.sort()
	for path in files:
		await _run_file(path, filter, default_timeout)
	if _passed + _failed == 0:
		print("no tests ran (filter: \"%s\") - that counts as a failure" % filter)
	print("%d passed, %d failed" % [_passed, _failed])
	# Let queue_free()d test nodes and their timers go before quitting, so that
	# Godot reports no leaked instances at exit.
	for i in 3:
		await get_tree().process_frame
	get_tree().quit(0 if _failed == 0 and _passed > 0 else 1)


func _run_file(path: String, filter: String, default_timeout: float) -> void:
	var file_name := path.trim_prefix(TESTS_DIR + "/")
	var source := FileAccess.get_file_as_string(path)
	var methods: PackedStringArray = []
	for m in _test_name_re.search_all(source):
		methods.append(m.get_string(1))
	var selected: PackedStringArray = []
	for method in methods:
		if filter == "" or ("%s::%s" % [file_name, method]).contains(filter):
			selected.append(method)
	if selected.is_empty():
		return
	var script := load(path) as Script
	if script == null or not script.can_instantiate():
		_report("%s::<load>" % file_name, PackedStringArray(
			["cannot load the script (see the SCRIPT ERROR / parse error above)"]))
		return
	if not _extends_base(script):
		_report("%s::<load>" % file_name, PackedStringArray(
			["a test file must extend NetkitTest (res://tests/netkit_test.gd)"]))
		return
	var timeout := float(script.get_script_constant_map().get("TIMEOUT", default_timeout))
	for method in selected:
		await _run_test(script, method, "%s::%s" % [file_name, method], timeout)


func _run_test(script: Script, method: String, test_name: String, timeout: float) -> void:
	print("--- run %s" % test_name)
	var node: Node = script.new()
	node.name = method
	add_child(node)
	var state := {"done": false}
	# Not awaited: the coroutine runs until its first await and we poll it, so a
	# test that never finishes can be abandoned after its timeout.
	_invoke(node, method, state)
	var deadline := Time.get_ticks_msec() + int(timeout * 1000.0)
	while not state["done"] and Time.get_ticks_msec() < deadline:
		await get_tree().process_frame
	var failures: PackedStringArray = node.failures().duplicate()
	if not state["done"]:
		failures.append("timed out after %ss (raise it with `const TIMEOUT := <seconds>` in the test file)" % timeout)
	node.queue_free()
	await get_tree().process_frame
	_report(test_name, failures)


func _invoke(node: Node, method: String, state: Dictionary) -> void:
	if not node.has_method(method):
		node.fail("no callable method %s (is it static or does it take arguments?)" % method)
	else:
		if node.has_method("before_each"):
			await node.call("before_each")
		if is_instance_valid(node):
			await node.call(method)
		if is_instance_valid(node) and node.has_method("after_each"):
			await node.call("after_each")
	state["done"] = true


func _report(test_name: String, failures: PackedStringArray) -> void:
	if failures.is_empty():
		_passed += 1
		print("test %s ... ok" % test_name)
		return
	_failed += 1
	var msg := failures[0]
	if failures.size() > 1:
		msg += " (+%d more: %s)" % [failures.size() - 1, " | ".join(failures.slice(1))]
	print("test %s ... FAILED: %s" % [test_name, msg.replace("\n", " | ")])


func _extends_base(script: Script) -> bool:
	var s := script
	while s != null:
		if s == BaseTest:
			return true
		s = s.get_base_script()
	return false


func _find_test_files(dir_path: String) -> PackedStringArray:
	var found: PackedStringArray = []
	var dir := DirAccess.open(dir_path)
	if dir == null:
		push_error("cannot open %s" % dir_path)
		return found
	for sub in dir.get_directories():
		found.append_array(_find_test_files(dir_path.path_join(sub)))
	for file in dir.get_files():
		if file.begins_with("test_") and file.ends_with(".gd"):
			found.append(dir_path.path_join(file))
	return found
