//! The in-process cost of one plugin call through the ABI, JSON in and out:
//! this crate's own cdylib loaded with the host's loader (dlopen, abi_stable
//! checks) and `fibo(20)` called the way the host's dispatch calls it,
//! beside the same function called directly, with and without the JSON.
//!
//!     cargo bench -p plugin-math --bench abi_call
//!
//! Figures go to docs/benchmarks.md ("In-process plugin call").

// criterion_group! defines an undocumented public function.
#![allow(missing_docs)]

use std::{hint::black_box, path::PathBuf};

use criterion::{criterion_group, criterion_main, Criterion};
use plughost_loader::{load, HostCall, PluginSpec};

/// The cdylib cargo built beside this bench (`target/<profile>/`).
fn own_cdylib() -> PathBuf {
    let exe = std::env::current_exe().expect("the bench knows its own path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("benches run from target/<profile>/deps");
    let lib = profile_dir.join("libplugin_math.so");
    assert!(
        lib.exists(),
        "{} is missing: cargo bench -p plugin-math builds it",
        lib.display()
    );
    lib
}

fn calls(c: &mut Criterion) {
    let plugin = load(&PluginSpec::file(own_cdylib())).expect("libplugin_math.so loads");
    let context = HostCall::new(plugin.name(), "fibo", "in-process");

    c.bench_function("abi: fibo(20), JSON in and out", |b| {
        b.iter(|| {
            plugin
                .call_json("fibo", black_box("[20]"), &context)
                .expect("fibo(20) answers")
        })
    });
    c.bench_function("direct: fibo(20), JSON in and out", |b| {
        b.iter(|| {
            let (n,): (u32,) = serde_json::from_str(black_box("[20]")).expect("[20] parses");
            serde_json::to_string(&plugin_math::fibo(n).expect("fibo(20) fits"))
                .expect("a u64 serialises")
        })
    });
    c.bench_function("direct: fibo(20), no JSON", |b| {
        b.iter(|| plugin_math::fibo(black_box(20)).expect("fibo(20) fits"))
    });
}

criterion_group!(benches, calls);
criterion_main!(benches);
