fn main() {
    println!("partyline.sys: {} ({} bytes)", partyline_image::SYS_PATH, partyline_image::IMAGE.len());
}
