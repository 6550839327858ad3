//! Entry point of the page's wasm: mount the Leptos app on the page.
fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(wbc_explorer::components::app::App);
}
