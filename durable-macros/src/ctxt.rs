//! Collects errors so a macro reports all of them at once.

use proc_macro2::TokenStream;
use quote::ToTokens;
use std::cell::RefCell;
use std::fmt::Display;

#[derive(Default)]
pub struct Ctxt {
    errors: RefCell<Option<Vec<syn::Error>>>,
}

impl Ctxt {
    pub fn new() -> Self {
        Ctxt { errors: RefCell::new(Some(Vec::new())) }
    }

    pub fn error_spanned_by<A: ToTokens, T: Display>(&self, obj: A, msg: T) {
        self.push(syn::Error::new_spanned(obj.into_token_stream(), msg));
    }

    pub fn error_at<T: Display>(&self, span: proc_macro2::Span, msg: T) {
        self.push(syn::Error::new(span, msg));
    }

    pub fn push(&self, err: syn::Error) {
        self.errors.borrow_mut().as_mut().expect("Ctxt used after check").push(err);
    }

    pub fn has_errors(&self) -> bool {
        self.errors.borrow().as_ref().is_some_and(|e| !e.is_empty())
    }

    /// Consume the collector: all errors combined into one, if any.
    pub fn check(self) -> Result<(), syn::Error> {
        let mut errors = self.errors.borrow_mut().take().expect("Ctxt checked twice").into_iter();
        let Some(mut combined) = errors.next() else { return Ok(()) };
        for rest in errors {
            combined.combine(rest);
        }
        Err(combined)
    }
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        if !std::thread::panicking() && self.errors.borrow().is_some() {
            panic!("forgot to check for errors");
        }
    }
}

/// The user's item unchanged plus the errors, so IDEs and the rest of the crate stay quiet.
pub fn with_errors(item: TokenStream, err: syn::Error) -> TokenStream {
    let errs = err.to_compile_error();
    quote::quote! { #item #errs }
}

/// The one option of `#[activity]` and `#[entity]`: `name = "…"`, the registered name.
/// `what` says what the name is, for the error on an unknown option.
pub fn parse_name_option(cx: &Ctxt, attr: TokenStream, macro_name: &str, what: &str) -> Option<String> {
    let mut name = None;
    if attr.is_empty() {
        return None;
    }
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            let s: syn::LitStr = meta.value()?.parse()?;
            name = Some(s.value());
            Ok(())
        } else {
            Err(meta.error(format!("unknown `#[{macro_name}]` option; the option is `name = \"…\"` ({what})")))
        }
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, attr) {
        cx.push(e);
    }
    name
}
