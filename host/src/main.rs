//! The `crm-users` binary: everything lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    crm_users::cli::main()
}
