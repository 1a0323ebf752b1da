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
