//! The KRM function's input (`hush krm`, the `ksops` persona): any bytes on stdin — a
//! ResourceList, a KSOPS generator, a bare stream — give a ResourceList with results, never a
//! panic. Files named by the input are looked up in an empty directory; there are no keys.
#![no_main]

use std::sync::OnceLock;

use hush_render::decrypt::Keys;
use hush_render::krm;
use hush_render::resolve::Options;
use libfuzzer_sys::fuzz_target;

struct Fixture {
    rt: tokio::runtime::Runtime,
    root: tempfile::TempDir,
    keys: Keys,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| Fixture {
        rt: tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime"),
        root: tempfile::tempdir().expect("temp dir"),
        keys: Keys::default(),
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let run = f
        .rt
        .block_on(krm::run(data, f.root.path(), &f.keys, None, &Options::default()));
    assert!(!run.stdout.is_empty(), "a KRM run always answers with a ResourceList");
});
