//! Per-frame work that runs with no borrow of a netkit object held.
//!
//! A `#[func]` or virtual (`_process`, `_notification`) receives `&mut self`: gdext holds a
//! `bind_mut()` of the object for the whole call. A signal emitted from there resumes
//! handlers and awaiting coroutines while that borrow is alive, and a handler that frees
//! the object (or its parent) then aborts the game ("Destroyed an object from Godot side,
//! while a bind() or bind_mut() call was active"). So the nodes do not deliver from
//! `_process`: each connects `SceneTree.process_frame` to a callable *linked* to itself.
//! The callable receives a `Gd<T>` and no borrow; the node takes each event under a short
//! `bind_mut()`, releases it, then emits. Godot removes a linked callable's connection when
//! its object is freed, so a freed node is never called again.
//!
//! Re-entrant calls (`request()` from a handler) need nothing special. What Godot itself
//! refuses stays Godot's: `free()` of an object inside its own signal's emission logs
//! "Object is locked and can't be freed" (as for HTTPRequest), and freeing its parent there
//! logs "was freed ... while a signal is being emitted"; neither crashes.
//! `test_handlers_may_free.gd` runs every signal with handlers and awaiting coroutines that
//! free the emitter or its parent, `queue_free()` it, free another node or call back;
//! `tests/addon/shutdown_signal.rs` does the same for `Netkit.shutdown_requested`.

use godot::classes::{Engine, SceneTree};
use godot::prelude::*;

/// The running `SceneTree`, if the main loop is one (it is in games, the editor and
/// headless servers; a custom `MainLoop` has none, and nothing is delivered there).
pub fn scene_tree() -> Option<Gd<SceneTree>> {
    Engine::singleton()
        .get_main_loop()
        .and_then(|m| m.try_cast::<SceneTree>().ok())
}

/// Calls `on_frame(node)` at the start of every frame (`SceneTree.process_frame`, before
/// any node's `_process`) until `node` is freed. Returns false when there is no SceneTree.
///
/// `node` must not be reference-counted: the callable keeps a `Gd` of it, which would keep
/// a `RefCounted` alive forever.
pub fn connect<T>(node: &Gd<T>, name: &str, mut on_frame: impl FnMut(Gd<T>) + 'static) -> bool
where
    T: GodotClass + Inherits<Object>,
{
    let Some(mut tree) = scene_tree() else {
        return false;
    };
    let target = node.clone();
    let callable = node.linked_callable(name.to_string(), move |_args| {
        // Godot drops the connection when the node is freed; this check covers a free
        // that happens earlier in the same emission of `process_frame`.
        if target.is_instance_valid() {
            on_frame(target.clone());
        }
        Variant::nil()
    });
    tree.connect("process_frame", &callable);
    true
}

/// Whether a node should deliver this frame: inside the tree it delivers when its
/// `_process` would run (`Node.can_process()` for pausing and `process_mode`, and
/// `Node.is_processing()`, so `set_process(false)` holds results back); outside the tree it
/// always delivers, so no request or packet ever waits silently for an `add_child()` that
/// may never come.
pub fn should_deliver<T>(node: &Gd<T>) -> bool
where
    T: GodotClass + Inherits<godot::classes::Node>,
{
    let node = node.clone().upcast::<godot::classes::Node>();
    !node.is_inside_tree() || (node.can_process() && node.is_processing())
}

/// What one node may still deliver this frame, shared by every delivery loop of the node
/// (an HTTPPool's responses, transfers and outbox; a DTLSPeer's events; AgonesSDK's
/// calls): at most `max_events`, and, unless `max_time` is zero, only while less than
/// `max_time` has passed since the frame's delivery began (`core::events::Budget`, the
/// nodes' `dispatch_max_per_frame` and `dispatch_budget_usec`). The first event of a frame
/// always goes, so a tiny time budget slows delivery down but never stops it.
pub struct FrameBudget {
    limits: crate::core::events::Budget,
    started: std::time::Instant,
    used: usize,
}

impl FrameBudget {
    /// A frame's budget from a node's properties: `max_events` (at least 1) and
    /// `max_time_usec` (0: no time limit).
    pub fn start(max_events: i64, max_time_usec: i64) -> Self {
        Self {
            limits: crate::core::events::Budget {
                max_events: max_events.max(1) as usize,
                max_time: std::time::Duration::from_micros(max_time_usec.max(0) as u64),
            },
            started: std::time::Instant::now(),
            used: 0,
        }
    }

    /// Whether one more event may be delivered this frame.
    pub fn allows(&self) -> bool {
        self.used < self.limits.max_events
            && (self.limits.max_time.is_zero()
                || self.used == 0
                || self.started.elapsed() < self.limits.max_time)
    }

    /// Counts one delivered event.
    pub fn spend(&mut self) {
        self.used += 1;
    }

    /// Events delivered so far this frame.
    pub fn used(&self) -> usize {
        self.used
    }
}
