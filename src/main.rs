//! The `claribi` binary: everything lives in the library; see `cli`.

/// mimalloc: request handling allocates and frees many small buffers across threads (rows are
/// read on blocking threads and freed on the async ones), which glibc's allocator does slowly.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    claribi::main()
}
