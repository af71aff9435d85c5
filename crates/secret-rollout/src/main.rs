//! `secret-rollout`: see README.md. `main` parses, dispatches and exits with the code.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
