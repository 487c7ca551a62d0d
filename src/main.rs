//! The `claribi` binary: everything lives in the library; see `cli`.

fn main() -> std::process::ExitCode {
    claribi::cli::main()
}
