class_name NetkitTest
extends Node
## Base class of every in-engine test file (res://tests/**/test_*.gd).
##
## The runner (res://tests/runner.gd) creates a fresh instance of the test file's
## script for each `test_*` method, adds it to the scene tree, awaits the method,
## then frees the node. So `_ready()` is per-test setup, and state never leaks from
## one test into the next. Optional `before_each()` / `after_each()` methods are
## awaited around the test (same timeout), for setup or cleanup that must await.
##
## Failure model: GDScript has no exceptions, so a failed assertion RECORDS a
## message and the test CONTINUES. Every assertion returns true when it held, so a
## test that cannot go on after a failure writes `if not assert_eq(a, b): return`.
## A test passes when it finished within its timeout and recorded no failure.
##
## Timeouts: 20 s per test unless the runner got `--test-timeout=S`, or the test
## file declares `const TIMEOUT := 30.0` (applies to each of its tests).
##
## Engine errors: every `ERROR:` line Godot prints fails the whole suite on the
## Rust side (check_suite), because Godot cannot tell us which test caused it. A
## test that provokes an error on purpose calls `expect_error("part of the text")`
## first; check_suite then tolerates ERROR lines containing that text.

## Prefix of the line expect_error() prints; rust/godot_runner/suite.rs parses it.
const EXPECT_ERROR_MARKER := "[netkit-expect-error] "

var _failures: PackedStringArray = PackedStringArray()


# --- results -------------------------------------------------------------------

## Records a failure; the test goes on (see the failure model above).
func fail(msg: String) -> void:
	_failures.append(msg if msg != "" else "fail() called")


## True once any assertion failed or fail() was called in this test.
func failed() -> bool:
	return not _failures.is_empty()


## Every failure message recorded so far, oldest first.
func failures() -> PackedStringArray:
	return _failures


# --- assertions ----------------------------------------------------------------

## Passes when `cond` is truthy (`if cond:` semantics).
func assert_true(cond: Variant, msg := "") -> bool:
	if cond:
		return true
	return _record("expected true, got %s" % _show(cond), msg)


## Passes when `cond` is falsy (`if not cond:` semantics).
func assert_false(cond: Variant, msg := "") -> bool:
	if not cond:
		return true
	return _record("expected false, got %s" % _show(cond), msg)


## Type-strict equality: the Variant types must match (1 != 1.0, "a" != &"a"), and
## Arrays / Dictionaries are compared element by element with the same strictness.
func assert_eq(actual: Variant, expected: Variant, msg := "") -> bool:
	if strict_equal(actual, expected):
		return true
	return _record("expected %s, got %s" % [_show(expected), _show(actual)], msg)


## Type-strict inequality: passes when assert_eq would fail.
func assert_ne(actual: Variant, unexpected: Variant, msg := "") -> bool:
	if not strict_equal(actual, unexpected):
		return true
	return _record("expected anything but %s" % _show(unexpected), msg)


## Passes when actual > bound (numbers of either kind, strings, ...).
func assert_gt(actual: Variant, bound: Variant, msg := "") -> bool:
	if actual > bound:
		return true
	return _record("expected > %s, got %s" % [_show(bound), _show(actual)], msg)


## Passes when actual < bound.
func assert_lt(actual: Variant, bound: Variant, msg := "") -> bool:
	if actual < bound:
		return true
	return _record("expected < %s, got %s" % [_show(bound), _show(actual)], msg)


## Passes when actual >= bound.
func assert_ge(actual: Variant, bound: Variant, msg := "") -> bool:
	if actual >= bound:
		return true
	return _record("expected >= %s, got %s" % [_show(bound), _show(actual)], msg)


## Passes when actual <= bound.
func assert_le(actual: Variant, bound: Variant, msg := "") -> bool:
	if actual <= bound:
		return true
	return _record("expected <= %s, got %s" % [_show(bound), _show(actual)], msg)


## Float comparison with a tolerance, for values that went through arithmetic.
func assert_almost_eq(actual: float, expected: float, tolerance := 1e-6, msg := "") -> bool:
	if absf(actual - expected) <= tolerance:
		return true
	return _record("expected %s ± %s, got %s" % [expected, tolerance, actual], msg)


## Passes when `value` is null.
func assert_null(value: Variant, msg := "") -> bool:
	if value == null:
		return true
	return _record("expected null, got %s" % _show(value), msg)


## Passes when `value` is not null.
func assert_not_null(value: Variant, msg := "") -> bool:
	if value != null:
		return true
	return _record("expected a value, got null", msg)


## Passes when `text` contains `part` (String or StringName).
func assert_contains(text: String, part: String, msg := "") -> bool:
	if text.contains(part):
		return true
	return _record("expected %s to contain %s" % [_show(text), _show(part)], msg)


## Declares that this test provokes an engine `ERROR:` line containing `part` on
## purpose, so check_suite does not fail the run over it. Call it before the error.
func expect_error(part: String) -> void:
	print(EXPECT_ERROR_MARKER + part)


## The equality assert_eq uses, exposed so tests can compare without asserting.
static func strict_equal(a: Variant, b: Variant) -> bool:
	if typeof(a) != typeof(b):
		return false
	match typeof(a):
		TYPE_ARRAY:
			if a.size() != b.size():
				return false
			for i in a.size():
				if not strict_equal(a[i], b[i]):
					return false
			return true
		TYPE_DICTIONARY:
			if a.size() != b.size():
				return false
			for key: Variant in a:
				if not b.has(key) or not strict_equal(a[key], b[key]):
					return false
			return true
		_:
			return a == b


# --- waiting -------------------------------------------------------------------

## Awaits `n` process frames.
func wait_frames(n: int) -> void:
	for i in n:
		await get_tree().process_frame


## Awaits `seconds` of wall-clock time (process frames keep running meanwhile).
func wait_seconds(seconds: float) -> void:
	await get_tree().create_timer(seconds, true, false, true).timeout


## Calls `cond` once per frame until it returns truthy (→ true) or `timeout_s`
## passes (→ false). Records no failure by itself: `assert_true(await wait_until(...))`.
func wait_until(cond: Callable, timeout_s := 5.0) -> bool:
	var deadline := Time.get_ticks_msec() + int(timeout_s * 1000.0)
	while true:
		if cond.call():
			return true
		if Time.get_ticks_msec() >= deadline:
			return false
		await get_tree().process_frame
	return false


## Awaits one emission of `sig` for at most `timeout_s` seconds.
## Returns the signal's arguments as an Array ([] for a signal without arguments),
## or null on timeout. A timeout records a failure unless `fail_on_timeout` is
## false (for "this must NOT be emitted" checks). Usage:
##     var args = await wait_signal(task.completed, 10.0)
##     if args == null: return
##     assert_eq(args[0], 200)
func wait_signal(sig: Signal, timeout_s := 10.0, fail_on_timeout := true) -> Variant:
	var source := sig.get_object()
	if source == null:
		fail("wait_signal: the signal's object is gone")
		return null
	var arg_count := -1
	for info: Dictionary in source.get_signal_list():
		if info["name"] == sig.get_name():
			arg_count = (info["args"] as Array).size()
			break
	if arg_count < 0 or arg_count > 6:
		fail("wait_signal: cannot wait for %s (unknown signal or more than 6 arguments)" % sig.get_name())
		return null
	var state := {"done": false, "args": []}
	var handler := Callable(self, "_on_waited_signal_%d" % arg_count).bind(state)
	sig.connect(handler, CONNECT_ONE_SHOT)
	var deadline := Time.get_ticks_msec() + int(timeout_s * 1000.0)
	while not state["done"] and Time.get_ticks_msec() < deadline:
		await get_tree().process_frame
	if state["done"]:
		return state["args"]
	if is_instance_valid(source) and sig.is_connected(handler):
		sig.disconnect(handler)
	if fail_on_timeout:
		fail("timed out after %ss waiting for signal %s" % [timeout_s, sig.get_name()])
	return null


## Same as wait_signal(sig, timeout_s); the name some tests prefer.
func await_signal_or_timeout(sig: Signal, timeout_s := 10.0) -> Variant:
	return await wait_signal(sig, timeout_s)


# --- HTTP ---------------------------------------------------------------------------

## A new HTTPPool for `base_url` with the properties in `props` set, added as a child of
## this test. Made through ClassDB so this harness still parses when the extension did
## not load (the runner then reports that instead of a parse error in every file).
func http_pool(base_url: String, props := {}) -> Node:
	var pool: Node = ClassDB.instantiate("HTTPPool")
	pool.base_url = base_url
	for key in props:
		pool.set(key, props[key])
	add_child(pool)
	return pool


## A key no earlier run of the suite used (the test server's logs are per key).
static func fresh_key(name: String) -> String:
	return "%s-%d" % [name, Time.get_ticks_usec()]


# --- command-line arguments ------------------------------------------------------

## Value of the user argument `--key=value` given after `--` on Godot's command line
## (a bare `--key` gives "true"). Falls back to the environment variable
## NETKIT_TEST_<KEY> (upper case, '-' → '_'), then to `default`.
## Example: `env("http-url")` reads `-- --http-url=http://127.0.0.1:8080`.
static func env(key: String, default := "") -> String:
	var args := env_args()
	if args.has(key):
		return args[key]
	var var_name := "NETKIT_TEST_" + key.to_upper().replace("-", "_")
	if OS.has_environment(var_name):
		return OS.get_environment(var_name)
	return default


## True when env(key) would find a value (argument or environment variable).
static func has_env(key: String) -> bool:
	return env_args().has(key) or OS.has_environment("NETKIT_TEST_" + key.to_upper().replace("-", "_"))


## Every `--key=value` / `--key` user argument, as key → value (String).
static func env_args() -> Dictionary:
	var out := {}
	for arg in OS.get_cmdline_user_args():
		if not arg.begins_with("--"):
			continue
		var eq := arg.find("=")
		if eq < 0:
			out[arg.substr(2)] = "true"
		else:
			out[arg.substr(2, eq - 2)] = arg.substr(eq + 1)
	return out


# --- internals -------------------------------------------------------------------

func _record(what: String, msg: String) -> bool:
	fail(what if msg == "" else "%s: %s" % [msg, what])
	return false


static func _show(value: Variant) -> String:
	var text := var_to_str(value) if typeof(value) != TYPE_OBJECT else str(value)
	if text.length() > 200:
		text = text.substr(0, 200) + "…"
	return "%s (%s)" % [text, type_string(typeof(value))]


func _on_waited_signal_0(state: Dictionary) -> void:
	_got_signal(state, [])


func _on_waited_signal_1(a: Variant, state: Dictionary) -> void:
	_got_signal(state, [a])


func _on_waited_signal_2(a: Variant, b: Variant, state: Dictionary) -> void:
	_got_signal(state, [a, b])


func _on_waited_signal_3(a: Variant, b: Variant, c: Variant, state: Dictionary) -> void:
	_got_signal(state, [a, b, c])


func _on_waited_signal_4(a: Variant, b: Variant, c: Variant, d: Variant, state: Dictionary) -> void:
	_got_signal(state, [a, b, c, d])


func _on_waited_signal_5(a: Variant, b: Variant, c: Variant, d: Variant, e: Variant, state: Dictionary) -> void:
	_got_signal(state, [a, b, c, d, e])


func _on_waited_signal_6(a: Variant, b: Variant, c: Variant, d: Variant, e: Variant, f: Variant, state: Dictionary) -> void:
	_got_signal(state, [a, b, c, d, e, f])


func _got_signal(state: Dictionary, args: Array) -> void:
	state["done"] = true
	state["args"] = args
