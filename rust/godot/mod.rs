//! The binding layer: registers the nodes and converts between engine and core types.

mod agones_sdk;
mod class_enums;
mod dtls_multiplayer_peer;
mod dtls_options;
mod dtls_peer;
mod durable_outbox;
mod frame_hook;
mod http_download;
mod http_outbox;
mod http_pool;
mod http_response;
mod http_stream;
mod http_task;
mod inspector;
mod json_variant;
mod monitors;
mod netkit_singleton;
mod project_settings;
mod simulation;
mod stats_dict;
mod transfer_delivery;

use std::time::Duration;

use godot::init::InitStage;
use godot::prelude::*;

use crate::core::runtime;

/// How long quitting waits for background tasks before abandoning them.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// The extension's entry point (`netkit_init`).
pub struct NetkitExtension;

#[gdextension(entry_symbol = netkit_init)]
unsafe impl ExtensionLibrary for NetkitExtension {
    fn on_stage_init(stage: InitStage) {
        if stage == InitStage::Scene {
            // After gdext registered the classes at this stage; see class_enums.
            class_enums::register();
            project_settings::register();
            monitors::register();
            netkit_singleton::register();
            if !godot::classes::Engine::singleton().is_editor_hint() {
                // Not in the editor: the log is for headless games and servers, and
                // gdext 0.5 warns "TypedSignal connections are now auto-disconnected" in
                // the editor's Output at every reload and exit while a Rust callable is
                // connected.
                monitors::hook_stats_log();
                simulation::apply_startup();
            }
        }
    }

    fn on_stage_deinit(stage: InitStage) {
        if stage == InitStage::Scene {
            netkit_singleton::unregister();
            monitors::unhook_stats_log();
            monitors::unregister();
            runtime::shutdown(SHUTDOWN_GRACE);
        }
    }
}
#[cfg(all(test, feature = "editor-docs"))]
mod editor_help_tests;
