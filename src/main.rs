//! The `kiln` command line.

fn main() {
    println!("kiln");
}
