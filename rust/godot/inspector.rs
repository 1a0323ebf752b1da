//! The editor's Inspector for netkit's nodes: sizes and long durations in readable units,
//! and labels Godot cannot derive from a property's name.
//!
//! Godot labels a property by capitalizing its name, with a fixed list of acronyms
//! (`EditorPropertyNameProcessor`): `trusted_ca_pem` reads "Trusted CA Pem" and
//! `pinned_sha256` "Pinned Sha 256". Renaming the properties would break scripts and saved
//! scenes, so an inspector plugin keeps the names and gives those rows a label, on Godot's
//! own editor for the property. Byte sizes and durations of days get a
//! [`unit_property::UnitProperty`] ("16 MiB", "7 d") instead of Godot's "16777216 B".
//!
//! Editor only: gdext registers an `EditorPlugin` class only in the editor, and adds it to
//! the editor without a `plugin.cfg` or the Project Settings' Plugins tab. Scripts, saved
//! scenes and exported games see the properties exactly as before.

mod unit_property;

use godot::classes::{
    Control, EditorInspectorPlugin, EditorInterface, EditorPlugin, IEditorInspectorPlugin,
    IEditorPlugin,
};
use godot::prelude::*;
use godot::register::info::PropertyHint;
use godot::register::info::PropertyUsageFlags;

use crate::core::units::RangeHint;
use unit_property::UnitProperty;

/// Metadata of the Inspector holding the object it showed when the extension was unloaded.
const REINSPECT: &str = "_netkit_reinspect";

/// The classes whose Inspector this plugin shapes.
const CLASSES: [&str; 3] = ["HTTPPool", "DTLSPeer", "AgonesSDK"];

/// Labels for names whose acronyms Godot's capitalization misses, and for sizes, whose
/// row shows the unit ("Max Body Size 16 MiB", not "Max Body Bytes 16 MiB"); every other
/// property keeps Godot's label. Labels as shown under their group, without its prefix,
/// and short enough for the Inspector dock's default width.
const LABELS: [(&str, &str); 6] = [
    ("max_body_bytes", "Max Body Size"),
    ("stream_max_line_bytes", "Max Line Size"),
    ("stream_buffer_bytes", "Buffer Size"),
    ("max_download_bytes", "Max Size"),
    // PEM: RFC 7468's name for the text form of a certificate.
    ("trusted_ca_pem", "Trusted CA PEM"),
    // SHA-256: FIPS 180-4's name for the hash; "Pinned SHA-256" is cut to "Pinned SHA-25"
    // at the dock's default width.
    ("pinned_sha256", "SHA-256 Pin"),
];

/// The netkit editor plugin: adds [NetkitInspectorPlugin] to the Inspector.
///
/// Internal to the editor, which loads it with the addon; there is nothing to enable in
/// Project Settings and nothing for scripts to call, and exported games never load it.
#[derive(GodotClass)]
#[class(tool, init, internal, base = EditorPlugin)]
pub struct NetkitEditorPlugin {
    inspector: Option<Gd<NetkitInspectorPlugin>>,
    base: Base<EditorPlugin>,
}

#[godot_api]
impl IEditorPlugin for NetkitEditorPlugin {
    fn enter_tree(&mut self) {
        let plugin = NetkitInspectorPlugin::new_gd();
        self.base_mut().add_inspector_plugin(&plugin);
        self.inspector = Some(plugin);
        // After a reload of the extension: show again what `exit_tree` took away, once
        // Godot has given the object its new instance.
        if let Some(mut inspector) = EditorInterface::singleton().get_inspector()
            && inspector.has_meta(REINSPECT)
        {
            let object = inspector.get_meta(REINSPECT);
            inspector.remove_meta(REINSPECT);
            inspector.call_deferred("edit", &[object]);
        }
    }

    fn exit_tree(&mut self) {
        if let Some(plugin) = self.inspector.take() {
            self.base_mut().remove_inspector_plugin(&plugin);
        }
        // The rows this plugin made (`UnitProperty`) belong to this library: when the
        // extension is reloaded, Godot cannot give them a new instance ("Unable to recreate
        // GDExtension instance") and they stay dead until the object is selected again. So
        // the Inspector lets go of the object now and `enter_tree` shows it again. The
        // object is kept in the Inspector's metadata, which outlives this library.
        // `EditorInspector.edit` is bound from Godot 4.4 on; this library is built for 4.3.
        if let Some(mut inspector) = EditorInterface::singleton().get_inspector()
            && inspector.has_method("edit")
            && let Some(object) = inspector.get_edited_object()
            && shaped(&object)
        {
            inspector.set_meta(REINSPECT, &object.to_variant());
            inspector.call("edit", &[Variant::nil()]);
        }
    }
}

/// Shapes the Inspector rows of [HTTPPool], [DTLSPeer] and [AgonesSDK].
///
/// Sizes and durations of days get a [UnitProperty] ("16 MiB", "7 d"), and a few rows a
/// label with acronyms spelled as their standards do ("Trusted CA PEM", "SHA-256 Pin").
/// The properties themselves, as scripts and saved scenes see them, are unchanged.
/// Internal to the editor: [NetkitEditorPlugin] adds it.
#[derive(GodotClass)]
#[class(tool, init, internal, base = EditorInspectorPlugin)]
pub struct NetkitInspectorPlugin {
    /// Set while this plugin asks Godot for its own editor of a row: Godot asks every
    /// inspector plugin again, this one included, which must then leave the row to Godot.
    asking_godot: bool,
    base: Base<EditorInspectorPlugin>,
}

#[godot_api]
impl IEditorInspectorPlugin for NetkitInspectorPlugin {
    fn can_handle(&self, object: Option<Gd<Object>>) -> bool {
        !self.asking_godot && object.is_some_and(|o| shaped(&o))
    }

    fn parse_property(
        &mut self,
        object: Option<Gd<Object>>,
        type_: VariantType,
        name: GString,
        hint_type: PropertyHint,
        hint_string: GString,
        usage_flags: PropertyUsageFlags,
        wide: bool,
    ) -> bool {
        let Some(object) = object else {
            return false;
        };
        let property = name.to_string();
        // An empty label keeps Godot's.
        let label = LABELS
            .iter()
            .find(|(p, _)| *p == property)
            .map_or("", |(_, l)| *l);
        let range =
            (hint_type == PropertyHint::RANGE).then(|| RangeHint::parse(&hint_string.to_string()));
        if let Some(range) = range
            && let Some(table) = range.units
        {
            let editor = UnitProperty::create(table, type_ == VariantType::INT, range);
            self.base_mut()
                .add_property_editor_ex(&name, &editor)
                .label(label)
                .done();
            return true;
        }
        if label.is_empty() {
            return false;
        }
        let row = Row {
            type_,
            hint: hint_type,
            hint_string,
            usage: usage_flags,
            wide,
        };
        self.asking_godot = true;
        let editor = {
            // Godot calls `can_handle` of this plugin meanwhile; the guard lets it in.
            let _reentry = self.base_mut();
            default_editor(&object, &name, &row)
        };
        self.asking_godot = false;
        let Some(editor) = editor else {
            return false;
        };
        self.base_mut()
            .add_property_editor_ex(&name, &editor)
            .label(label)
            .done();
        true
    }
}

/// Whether the Inspector's `object` is one of [CLASSES], or stands for several selected
/// nodes that all are: Godot then edits a `MultiNodeEdit`, which reads the first node's
/// value and sets every node's, and its rows must read as the single node's do.
fn shaped(object: &Gd<Object>) -> bool {
    let ours = |o: &Gd<Object>| CLASSES.iter().any(|c| o.is_class(*c));
    if ours(object) {
        return true;
    }
    if !object.is_class("MultiNodeEdit") {
        return false;
    }
    let Some(selection) = EditorInterface::singleton().get_selection() else {
        return false;
    };
    let nodes = selection.get_selected_nodes();
    !nodes.is_empty() && nodes.iter_shared().all(|n| ours(&n.upcast()))
}

/// What the Inspector says of a property row, besides its name.
struct Row {
    type_: VariantType,
    hint: PropertyHint,
    hint_string: GString,
    usage: PropertyUsageFlags,
    wide: bool,
}

/// Godot's own editor for a property (`EditorInspector.instantiate_property_editor`,
/// Godot 4.4 and later), so a relabelled row behaves exactly as Godot's. Called by name
/// because this library is built against the 4.3 API; in Godot 4.3 there is none, and the
/// row keeps Godot's label.
fn default_editor(object: &Gd<Object>, name: &GString, row: &Row) -> Option<Gd<Control>> {
    const METHOD: &str = "instantiate_property_editor";
    let mut inspector = EditorInterface::singleton().get_inspector()?;
    if !inspector.has_method(METHOD) {
        return None;
    }
    let editor = inspector.call(
        METHOD,
        &[
            object.to_variant(),
            (row.type_.ord() as i64).to_variant(),
            name.to_variant(),
            (row.hint.ord() as i64).to_variant(),
            row.hint_string.to_variant(),
            (row.usage.ord() as i64).to_variant(),
            row.wide.to_variant(),
        ],
    );
    editor.try_to::<Gd<Control>>().ok()
}
