//! An Inspector row for a byte size or a long duration: a number and a unit menu
//! ("16" "MiB"), stored in bytes or seconds.
//!
//! Which unit shows is `core::units::display_unit`: the largest that holds the value as a
//! whole number, or the one the user picked while it still does. The menu offers only units
//! that hold the value whole, so the row never shows a rounded figure; to set 1.5 MiB, pick
//! KiB and type 1536.

use godot::classes::control::SizeFlags;
use godot::classes::{
    EditorProperty, EditorSpinSlider, HBoxContainer, IEditorProperty, OptionButton,
};
use godot::prelude::*;

use crate::core::units::{self, RangeHint, Unit};

/// An Inspector row showing a size or a long duration as a number and a unit.
///
/// The number is edited in the unit picked beside it (B, KiB, MiB, GiB, TiB; or s, min,
/// h, d) and stored in bytes or seconds, as scripts see the property. Only units that hold
/// the value as a whole number are offered, so the row never shows a rounded figure. Made
/// by [NetkitInspectorPlugin]; internal to the editor.
#[derive(GodotClass)]
#[class(tool, no_init, internal, base = EditorProperty)]
pub struct UnitProperty {
    table: &'static [Unit],
    /// An `int` property (bytes): values are rounded to whole base units.
    whole: bool,
    range: RangeHint,
    /// Index into `table` of the unit shown, and the value it is kept for
    /// (`units::display_unit`); `None` until the first update.
    unit: Option<(usize, f64)>,
    amount: Gd<EditorSpinSlider>,
    menu: Gd<OptionButton>,
    base: Base<EditorProperty>,
}

impl UnitProperty {
    /// A row in the units of `table`, for a property with the range hint `range`.
    pub fn create(table: &'static [Unit], whole: bool, range: RangeHint) -> Gd<Self> {
        let mut amount = EditorSpinSlider::new_alloc();
        amount.set_h_size_flags(SizeFlags::EXPAND_FILL);
        // A slider across a terabyte or a year moves by millions per pixel.
        amount.set_hide_slider(true);
        let mut menu = OptionButton::new_alloc();
        menu.set_flat(true);
        for unit in table {
            menu.add_item(unit.symbol);
        }
        let mut row = HBoxContainer::new_alloc();
        row.add_child(&amount);
        row.add_child(&menu);
        let mut this = Gd::from_init_fn(|base| Self {
            table,
            whole,
            range,
            unit: None,
            amount: amount.clone(),
            menu: menu.clone(),
            base,
        });
        this.add_child(&row);
        this.add_focusable(&amount);
        this.add_focusable(&menu);
        amount.connect(
            "value_changed",
            &Callable::from_object_method(&this, "on_amount_changed"),
        );
        menu.connect(
            "item_selected",
            &Callable::from_object_method(&this, "on_unit_selected"),
        );
        this
    }

    /// The property's value in base units.
    fn stored(&self) -> f64 {
        let property = self.base().get_edited_property();
        self.base()
            .get_edited_object()
            .map(|o| o.get(&property))
            .and_then(|v| {
                // gdext converts an `int` Variant to `i64` only.
                v.try_to::<f64>()
                    .ok()
                    .or_else(|| v.try_to::<i64>().ok().map(|n| n as f64))
            })
            .unwrap_or(0.0)
    }

    /// Shows `value` in unit `index`: the number, its limits and step in that unit, and
    /// the menu with the units that hold `value` whole.
    fn show(&mut self, value: f64, index: usize) {
        self.unit = Some((index, value));
        let unit = self.table[index];
        let range = self.range;
        // A larger unit steps by one from a whole minimum: Godot's Range snaps a value to
        // `min + k * step`, so a minimum of 1 s shown as 1/86400 d would snap 7 d off. A
        // step below one would also show every whole size with decimals ("16.0 MiB").
        let (step, min, max) = if index == 0 {
            (range.step, range.min, range.max)
        } else {
            let min = units::to_unit(range.min, unit).ceil();
            (1.0, min, units::to_unit(range.max, unit).floor().max(min))
        };
        let amount = &mut self.amount;
        // Range emits `value_changed` when a new step or limit moves the value; that is
        // not an edit, and must not be stored.
        amount.set_block_signals(true);
        amount.set_step(step);
        amount.set_min(min);
        amount.set_max(max);
        amount.set_allow_greater(range.or_greater);
        amount.set_allow_lesser(range.or_less);
        amount.set_value_no_signal(units::to_unit(value, unit));
        amount.set_block_signals(false);
        for (i, u) in self.table.iter().enumerate() {
            self.menu
                .set_item_disabled(i as i32, !units::holds_whole(value, *u));
        }
        self.menu.select(index as i32);
    }

    /// The value to store for `amount` in the unit shown; that unit stays for it.
    fn store_amount(&mut self, amount: f64) -> Variant {
        let index = self.unit.map_or(0, |(i, _)| i);
        let range = self.range;
        let value = units::from_unit(amount, self.table[index], range.min, range.step, self.whole);
        self.unit = Some((index, value));
        if self.whole {
            (value as i64).to_variant()
        } else {
            value.to_variant()
        }
    }
}

#[godot_api]
impl UnitProperty {
    /// The number was edited: store it in base units. The Inspector sets the property
    /// (with undo) and calls `update_property` back, so no borrow is held meanwhile.
    #[func(gd_self)]
    fn on_amount_changed(mut this: Gd<Self>, amount: f64) {
        let (property, value) = {
            let mut me = this.bind_mut();
            let value = me.store_amount(amount);
            (me.base().get_edited_property(), value)
        };
        this.upcast_mut::<EditorProperty>()
            .emit_changed(&property, &value);
    }

    /// A unit was picked: the same value, shown in that unit.
    #[func]
    fn on_unit_selected(&mut self, index: i64) {
        let value = self.stored();
        if let Ok(index) = usize::try_from(index)
            && index < self.table.len()
        {
            self.show(value, index);
        }
    }
}

#[godot_api]
impl IEditorProperty for UnitProperty {
    fn update_property(&mut self) {
        let value = self.stored();
        let index = units::display_unit(self.table, value, self.unit);
        self.show(value, index);
    }

    fn set_read_only(&mut self, read_only: bool) {
        self.amount.set_read_only(read_only);
        self.menu.set_disabled(read_only);
    }
}
