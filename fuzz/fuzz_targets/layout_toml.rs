//! Fuzz target: a lot layout file, `Layout::from_toml` (what `valet lot` and the layouts API load).
//!
//! Invariants: no panic; an accepted layout is valid, writes (`to_toml`) a text that loads as the
//! same layout, and every space has a quad.

#![no_main]

use libfuzzer_sys::fuzz_target;
use valet_lot::Layout;

fuzz_target!(|text: &str| {
    let Ok(layout) = Layout::from_toml(text) else { return };
    assert!(layout.validate().is_ok());
    for space in &layout.spaces {
        assert!(space.quad().is_some(), "space {} has no quad", space.id);
    }
    let written = layout.to_toml();
    let again = Layout::from_toml(&written)
        .unwrap_or_else(|e| panic!("{layout:?} loaded, but its own TOML is refused: {e}\n{written}"));
    assert_eq!(again, layout);
});
