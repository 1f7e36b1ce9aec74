//! The stateful chapter of `docs/writing-plugins.md` shows this plugin's
//! code: every Rust block of the chapter must appear in `src/lib.rs`, line
//! for line (indentation aside), so the guide's code is code CI compiles.

#![allow(clippy::unwrap_used)]

fn trimmed(text: &str) -> Vec<&str> {
    text.lines().map(str::trim).collect()
}

#[test]
fn every_rust_block_of_the_stateful_chapter_is_this_plugins_code() {
    let guide = include_str!("../../../docs/writing-plugins.md");
    let source = include_str!("../src/lib.rs");
    let chapter = guide
        .split("\n## ")
        .find(|c| c.starts_with("8. A stateful plugin"))
        .expect("the guide has its chapter 8, A stateful plugin");
    let source = trimmed(source);
    let blocks: Vec<&str> = chapter
        .split("```rust\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert!(blocks.len() >= 4, "{} Rust blocks", blocks.len());
    for block in blocks {
        let lines = trimmed(block.trim_end());
        let found = source.windows(lines.len()).any(|w| w == lines.as_slice());
        assert!(
            found,
            "this block of the guide is not in plugins/kvstore/src/lib.rs:\n{block}"
        );
    }
}
