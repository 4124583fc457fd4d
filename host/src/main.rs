use clap::Parser;

fn main() {
    let cli = weir::cli::Cli::parse();
    if let Err(e) = weir::cli::run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
