//! `#[derive(Children)]`: the one listing of a layer's children and tensors, from which every
//! traversal of `kiln_nn::Module` derives (state dicts, training mode, memory format, BatchNorm
//! walks, pruning's tensor maps).
//!
//! Field attributes, in the order the fields are declared (that order is the state dict's):
//! - `#[param]` / `#[buffer]`: a `Tensor`, `Option<Tensor>` or `Vec<Tensor>` under the field's
//!   name (`name = "..."` renames it);
//! - `#[child]`: anything `kiln_nn::Child` covers (a module, a box of one, `Option`, `Vec`,
//!   pairs) under the field's name; `name = "se"` renames it, `flatten` puts its tensors
//!   directly under the parent's prefix, `each = "layer{}"` names each element of a `Vec` by the
//!   format with its index plus `start` (default 0), and `each = "s{}.b{}"` each element of a
//!   `Vec` of `Vec`s by both indices, and `each = "conv{}", pair = "bn{}"` the two halves of each
//!   element of a `Vec` of pairs, in turn (`conv1`, `bn1`, `conv2`, `bn2`);
//! - `#[training]`: the `bool` that `set_training` sets.
//!
//! `#[children(group)]` on the struct makes it a `kiln_nn::Child` of its own: a
//! grouping of children and tensors under its field's name that is not a module itself (a stem
//! or shortcut a model builds from parts).
//!
//! An enum's variant with one unnamed field and no attribute is that field, flattened (`Norm2d`'s
//! `Batch(bn)` has `bn`'s tensors under its own prefix); other variants' fields follow the rules
//! above.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{parse_macro_input, Data, DeriveInput, Field, Fields, Ident, LitInt, LitStr};

/// Implements `kiln_nn::Children` from the fields' `#[param]`, `#[buffer]`, `#[child]` and
/// `#[training]` attributes.
#[proc_macro_derive(Children, attributes(children, param, buffer, child, training))]
pub fn derive_children(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// One field's part in the listing.
enum Role {
    Tensor {
        name: String,
        buffer: bool,
    },
    Child {
        name: String,
    },
    Each {
        format: String,
        start: usize,
        pair: Option<String>,
    },
    Training,
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let (visit, visit_mut) = match &input.data {
        // A struct destructures itself; an enum matches its variants.
        Data::Struct(s) => {
            let items = listed(&s.fields, false)?;
            let pat = pattern(&s.fields, &items);
            let (reads, writes) = statements(&items);
            match items.is_empty() {
                true => (quote!(), quote!()),
                false => (
                    quote! { let Self #pat = self; #(#reads)* },
                    quote! { let Self #pat = self; #(#writes)* },
                ),
            }
        }
        Data::Enum(e) => {
            let mut arms = Vec::new();
            let mut arms_mut = Vec::new();
            for variant in &e.variants {
                let items = listed(&variant.fields, true)?;
                let (vi, pat) = (&variant.ident, pattern(&variant.fields, &items));
                let (reads, writes) = statements(&items);
                arms.push(quote! { Self::#vi #pat => { #(#reads)* } });
                arms_mut.push(quote! { Self::#vi #pat => { #(#writes)* } });
            }
            (
                quote! { match self { #(#arms)* } },
                quote! { match self { #(#arms_mut)* } },
            )
        }
        Data::Union(u) => {
            let msg = "Children cannot be derived for a union";
            return Err(syn::Error::new(u.union_token.span(), msg));
        }
    };
    // A group (and a box of one, which a module's box impl does not cover) is a `Child`.
    let group = is_group(input)?.then(|| {
        let child_of = |ty: TokenStream, get: TokenStream, get_mut: TokenStream| {
            quote! {
                impl #impl_generics ::kiln_nn::Child for #ty #where_clause {
                    fn visit_as(&self, name: &str, v: &mut dyn ::kiln_nn::Visitor) {
                        ::kiln_nn::visit_group(#get, name, v)
                    }
                    fn visit_as_mut(
                        &mut self,
                        name: &str,
                        v: &mut dyn ::kiln_nn::VisitorMut,
                    ) -> ::kiln_nn::Result<()> {
                        ::kiln_nn::visit_group_mut(#get_mut, name, v)
                    }
                }
            }
        };
        let plain = child_of(quote!(#ident #ty_generics), quote!(self), quote!(self));
        let boxed = child_of(
            quote!(::std::boxed::Box<#ident #ty_generics>),
            quote!(&**self),
            quote!(&mut **self),
        );
        quote! { #plain #boxed }
    });
    Ok(quote! {
        #group
        impl #impl_generics ::kiln_nn::Children for #ident #ty_generics #where_clause {
            #[allow(unused_variables)]
            fn visit(&self, v: &mut dyn ::kiln_nn::Visitor) {
                #visit
            }
            #[allow(unused_variables)]
            fn visit_mut(&mut self, v: &mut dyn ::kiln_nn::VisitorMut) -> ::kiln_nn::Result<()> {
                #visit_mut
                ::core::result::Result::Ok(())
            }
        }
    })
}

/// The calls that hand `items` to the visitor: by reference, and by mutable reference.
fn statements(items: &[Listed]) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let reads = items.iter().map(|l| l.statement(false)).collect();
    let writes = items.iter().map(|l| l.statement(true)).collect();
    (reads, writes)
}

/// Whether the type carries `#[children(group)]`.
fn is_group(input: &DeriveInput) -> syn::Result<bool> {
    let mut group = false;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("children")) {
        attr.parse_nested_meta(|m| match m.path.is_ident("group") {
            true => {
                group = true;
                Ok(())
            }
            false => Err(m.error("expected `group`")),
        })?;
    }
    Ok(group)
}

/// A field that takes part, bound in the pattern as `binding`.
struct Listed {
    index: usize,
    binding: Ident,
    role: Role,
}

impl Listed {
    /// The call that hands this field to the visitor `v`, by reference or mutable reference.
    fn statement(&self, mutable: bool) -> TokenStream {
        let b = &self.binding;
        let (visit, q) = match mutable {
            false => (quote!(visit_as), quote!()),
            true => (quote!(visit_as_mut), quote!(?)),
        };
        match &self.role {
            Role::Tensor { name, buffer } => {
                let kind = match buffer {
                    true => quote!(::kiln_nn::Kind::Buffer),
                    false => quote!(::kiln_nn::Kind::Parameter),
                };
                quote! { ::kiln_nn::TensorSlot::#visit(#b, #name, #kind, v) #q; }
            }
            Role::Child { name } => quote! { ::kiln_nn::Child::#visit(#b, #name, v) #q; },
            Role::Each {
                format,
                start,
                pair,
            } => {
                let iter = match mutable {
                    false => quote!(iter),
                    true => quote!(iter_mut),
                };
                match (pair, format.matches("{}").count()) {
                    // A list of pairs: "conv{}" and "bn{}" of one index, in turn.
                    (Some(second), _) => quote! {
                        for (i, (a, b)) in #b.#iter().enumerate() {
                            ::kiln_nn::Child::#visit(a, &format!(#format, i + #start), v) #q;
                            ::kiln_nn::Child::#visit(b, &format!(#second, i + #start), v) #q;
                        }
                    },
                    // "s{}.b{}" names a list of lists: both indices from `start`.
                    (None, 2) => quote! {
                        for (i, list) in #b.#iter().enumerate() {
                            for (j, c) in list.#iter().enumerate() {
                                let name = format!(#format, i + #start, j + #start);
                                ::kiln_nn::Child::#visit(c, &name, v) #q;
                            }
                        }
                    },
                    (None, _) => quote! {
                        for (i, c) in #b.#iter().enumerate() {
                            ::kiln_nn::Child::#visit(c, &format!(#format, i + #start), v) #q;
                        }
                    },
                }
            }
            Role::Training => match mutable {
                false => quote! { v.training(*#b); },
                true => quote! { v.training(#b); },
            },
        }
    }
}

/// The fields of one struct or variant that take part, in declaration order. In an enum
/// (`in_enum`), a lone unnamed field without attributes is a flattened child.
fn listed(fields: &Fields, in_enum: bool) -> syn::Result<Vec<Listed>> {
    let lone = in_enum && matches!(fields, Fields::Unnamed(u) if u.unnamed.len() == 1);
    let mut out = Vec::new();
    for (index, field) in fields.iter().enumerate() {
        let role = match role(field, index)? {
            Some(role) => role,
            None if lone => Role::Child {
                name: String::new(),
            },
            None => continue,
        };
        let binding = format_ident!("__kiln_field_{index}");
        out.push(Listed {
            index,
            binding,
            role,
        });
    }
    Ok(out)
}

/// The pattern that binds every listed field of `fields`.
fn pattern(fields: &Fields, items: &[Listed]) -> TokenStream {
    let bound = |i: usize| items.iter().find(|l| l.index == i).map(|l| &l.binding);
    match fields {
        Fields::Named(named) => {
            let parts = (named.named.iter().enumerate()).filter_map(|(i, f)| {
                let name = f.ident.as_ref()?;
                bound(i).map(|b| quote!(#name: #b))
            });
            quote!({ #(#parts,)* .. })
        }
        Fields::Unnamed(unnamed) => {
            let parts = (0..unnamed.unnamed.len()).map(|i| match bound(i) {
                Some(b) => quote!(#b),
                None => quote!(_),
            });
            quote!(( #(#parts),* ))
        }
        Fields::Unit => quote!(),
    }
}

/// The role a field's attributes give it, if any; the default name is the field's own (its
/// index for a tuple field).
fn role(field: &Field, index: usize) -> syn::Result<Option<Role>> {
    let default_name = match &field.ident {
        Some(i) => i.to_string().trim_start_matches("r#").to_string(),
        None => index.to_string(),
    };
    let mut found = None;
    for attr in &field.attrs {
        let Some(kind) = attr.path().get_ident().map(Ident::to_string) else {
            continue;
        };
        let role = match kind.as_str() {
            "param" | "buffer" => {
                let mut name = default_name.clone();
                if matches!(attr.meta, syn::Meta::List(_)) {
                    attr.parse_nested_meta(|m| {
                        if m.path.is_ident("name") {
                            name = m.value()?.parse::<LitStr>()?.value();
                            Ok(())
                        } else {
                            Err(m.error("expected `name = \"...\"`"))
                        }
                    })?;
                }
                let buffer = kind == "buffer";
                Role::Tensor { name, buffer }
            }
            "child" => child_role(attr, default_name.clone())?,
            "training" => Role::Training,
            _ => continue,
        };
        if found.replace(role).is_some() {
            let msg = "a field takes one of #[param], #[buffer], #[child], #[training]";
            return Err(syn::Error::new(attr.span(), msg));
        }
    }
    Ok(found)
}

/// `#[child]`, `#[child(name = "..")]`, `#[child(flatten)]`,
/// `#[child(each = "..{}", pair = "..{}", start = N)]`.
fn child_role(attr: &syn::Attribute, default_name: String) -> syn::Result<Role> {
    let mut name = default_name;
    let mut each: Option<String> = None;
    let mut pair: Option<String> = None;
    let mut start = 0usize;
    if matches!(attr.meta, syn::Meta::List(_)) {
        attr.parse_nested_meta(|m| {
            if m.path.is_ident("name") {
                name = m.value()?.parse::<LitStr>()?.value();
            } else if m.path.is_ident("flatten") {
                name = String::new();
            } else if m.path.is_ident("each") {
                each = Some(m.value()?.parse::<LitStr>()?.value());
            } else if m.path.is_ident("pair") {
                pair = Some(m.value()?.parse::<LitStr>()?.value());
            } else if m.path.is_ident("start") {
                start = m.value()?.parse::<LitInt>()?.base10_parse()?;
            } else {
                return Err(m.error("expected `name`, `flatten`, `each`, `pair` or `start`"));
            }
            Ok(())
        })?;
    }
    Ok(match each {
        Some(format) => Role::Each {
            format,
            start,
            pair,
        },
        None => Role::Child { name },
    })
}
