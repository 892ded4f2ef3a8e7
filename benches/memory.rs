//! Where the bytes of loaded integrations go: loads an integrations folder
//! under a counting allocator and prints the live heap per integration, and
//! for each file of the first tenant what its parsed spec, its compiled
//! integration (templates shared) and a copy with its own templates cost.
//!
//!     python3 -c 'import sys; sys.path.insert(0, "benches"); import reload, pathlib; \
//!         reload.generate(pathlib.Path("/tmp/gen"), 1000, 10)'
//!     cargo bench --bench memory -- /tmp/gen

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        ALLOCS.fetch_sub(1, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> (usize, usize) {
    (LIVE.load(Ordering::Relaxed), ALLOCS.load(Ordering::Relaxed))
}

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .expect("usage: memory DIR");
    let dir = std::path::Path::new(&dir);
    let (b0, a0) = live();
    let snapshot = recado::config::load_dir(dir);
    let (b1, a1) = live();
    let n = snapshot.integration_count().max(1);
    println!(
        "{} tenants, {n} integrations, {} errors: {} bytes live in {} allocations; {} bytes and {} allocations per integration",
        snapshot.tenants.len(),
        snapshot.all_errors().count(),
        b1 - b0,
        a1 - a0,
        (b1 - b0) / n,
        (a1 - a0) / n
    );
    // One integration file of each kind, alone: parsed spec vs compiled.
    let tenant = snapshot.tenants.values().next().expect("a tenant");
    for integration in tenant.integrations.values() {
        let bytes = std::fs::read(dir.join(&integration.file)).unwrap();
        let (b, a) = live();
        let spec: recado::config::spec::IntegrationSpec =
            recado::config::yaml::parse(&bytes, &integration.file).unwrap();
        let (bs, as_) = live();
        let opts = recado::config::compile::CompileOptions {
            timezone: "America/Sao_Paulo".into(),
            fuel: recado::config::compile::DEFAULT_FUEL,
        };
        let again = recado::config::load_integration(
            &bytes,
            &integration.file,
            "x",
            &opts,
            &Default::default(),
            None,
        );
        let (bc, ac) = live();
        // The same file with other wording: every template compiled anew.
        let other = String::from_utf8_lossy(&bytes).replace("Empresa", "Outra");
        let fresh = recado::config::load_integration(
            other.as_bytes(),
            &integration.file,
            "y",
            &opts,
            &Default::default(),
            None,
        );
        let (bf, af) = live();
        println!(
            "{:24} file {:5} B; spec {:6} B/{:4} allocs; loaded, templates shared {:6} B/{:4} allocs; with its own templates {:6} B/{:4} allocs",
            integration.file,
            bytes.len(),
            bs - b,
            as_ - a,
            bc - bs,
            ac - as_,
            bf - bc,
            af - ac,
        );
        drop((spec, again, fresh));
    }
}
