//! Code generation: the handle struct, the registered descriptor, and the `trigger` methods.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Attribute, Ident, Type};

use super::assertions::rewrite_assertions;
use super::options::CaseConfig;
use super::signature::{CaseFn, Param};

/// Where each attribute of the user's fn goes.
struct SortedAttrs<'a> {
    /// `#[cfg]`: on every generated item, so a case compiled out is entirely gone.
    cfg: Vec<&'a Attribute>,
    /// Docs and `#[deprecated]`: on the handle, which is what users name.
    handle: Vec<&'a Attribute>,
    /// Everything else (lints, `#[tracing::instrument]`, ...): on the fn body.
    body: Vec<&'a Attribute>,
}

fn sort_attrs(attrs: &[Attribute]) -> SortedAttrs<'_> {
    let mut sorted = SortedAttrs {
        cfg: Vec::new(),
        handle: Vec::new(),
        body: Vec::new(),
    };
    for attr in attrs {
        let path = attr.path();
        if path.is_ident("cfg") {
            sorted.cfg.push(attr);
        } else if path.is_ident("doc") || path.is_ident("deprecated") {
            sorted.handle.push(attr);
        } else {
            sorted.body.push(attr);
        }
    }
    sorted
}

/// Writes the handle struct, the registered descriptor, and the `trigger` methods.
pub(crate) fn render(func: &CaseFn, params: &[Param], config: &CaseConfig) -> TokenStream {
    let root = &config.root();
    let vis = &func.vis;
    let ident = &func.sig.ident;
    let fn_name = ident.unraw().to_string();
    let descriptor = format_ident!("__LIVECHECK_CASE_{}", fn_name, span = ident.span());
    let SortedAttrs { cfg, handle, body } = sort_attrs(&func.attrs);

    let name = match &config.name {
        Some(name) => name.to_token_stream(),
        None => quote!(::core::concat!(::core::module_path!(), "::", #fn_name)),
    };
    let options = config.options_tokens(root);
    let param_names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
    let locals: Vec<&Ident> = params.iter().map(|p| &p.local).collect();
    let types: Vec<&Type> = params.iter().map(|p| &p.ty).collect();

    let run = {
        let args: Vec<Ident> = (0..params.len())
            .map(|i| format_ident!("__livecheck_arg{}", i))
            .collect();
        let decode = params
            .iter()
            .zip(&args)
            .enumerate()
            .map(|(i, (param, arg))| {
                let (ty, name) = (&param.ty, &param.name);
                let i = Literal::usize_suffixed(i);
                let call = quote_spanned! {ty.span()=>
                    #root::__private::argument::<#ty>(__livecheck_test, #i, #name)
                };
                quote! {
                    let #arg = match #call {
                        ::core::result::Result::Ok(__livecheck_value) => __livecheck_value,
                        ::core::result::Result::Err(__livecheck_error) => {
                            return #root::__private::ready_err(__livecheck_error);
                        }
                    };
                }
            });
        let output_span = match &func.sig.output {
            syn::ReturnType::Default => ident.span(),
            syn::ReturnType::Type(_, ty) => ty.span(),
        };
        // Whole call on the return type's span: a return type that is no case result is
        // reported there.
        let mut handle = ident.clone();
        handle.set_span(output_span);
        let call = quote_spanned! {output_span=>
            #root::__private::into_case_result(#handle::__livecheck_body(#(#args),*).await)
        };
        // On the fn's name: a body whose future is not `Send` is reported there.
        let boxed = quote_spanned! {ident.span()=>
            ::std::boxed::Box::pin(async move { #call })
        };
        quote! {{
            fn __livecheck_run(
                __livecheck_test: &#root::TestExecution,
            ) -> #root::__private::BoxFuture<#root::Result> {
                #(#decode)*
                #boxed
            }
            __livecheck_run
        }}
    };

    let fake_request = match &config.fake_request {
        None => quote!(::core::option::Option::None),
        Some(path) => {
            let call = quote_spanned! {path.span()=>
                ::std::boxed::Box::pin(async move {
                    #root::__private::into_case_result(#path(__livecheck_request).await)
                })
            };
            quote! {
                ::core::option::Option::Some({
                    fn __livecheck_fake_request(
                        __livecheck_request: #root::FakeRequest,
                    ) -> #root::__private::BoxFuture<#root::Result> {
                        #call
                    }
                    __livecheck_fake_request
                })
            }
        }
    };

    let hooks = match &config.hooks {
        None => quote!(::core::option::Option::None),
        Some(path) => {
            // On the path: a type that is not hooks, or has no `Default`, is reported there.
            let instance = quote_spanned! {path.span()=>
                #root::__private::hooks::<#path>(&__LIVECHECK_HOOKS)
            };
            quote! {
                ::core::option::Option::Some({
                    fn __livecheck_hooks() -> &'static dyn #root::__private::ErasedHooks {
                        static __LIVECHECK_HOOKS: ::std::sync::OnceLock<#path> =
                            ::std::sync::OnceLock::new();
                        #instance
                    }
                    __livecheck_hooks
                })
            }
        }
    };

    let encode = params.iter().map(|param| {
        let (local, name) = (&param.local, &param.name);
        quote_spanned! {param.ty.span()=>
            #root::__private::encode_arg(#descriptor.name, #name, &#local)?
        }
    });

    let mut body_sig = func.sig.clone();
    body_sig.ident = Ident::new("__livecheck_body", ident.span());
    // The body's assertions become livecheck's, so a failed one is a FAIL, not an ERROR.
    let block = rewrite_assertions(func.body.clone(), root);

    let trigger_doc = format!(
        " Triggers a test of the `{fn_name}` case now, under test id `id`, with these arguments.\n\
         \n\
         `id` is a string, or `livecheck::AutoId` for a new UUID (v4), as Faust generates one\n\
         when no id is given.\n\
         \n\
         The arguments are serialized into the published test execution, in the order of the\n\
         case fn's parameters, and a livecheck worker runs the case with them. Unlike\n\
         `maybe_trigger`, this ignores the case's `probability`.\n\
         \n\
         Returns the test execution, queued for Kafka: this never waits on the broker. A test\n\
         that cannot be queued is dropped and counted (`Client::counters`); await\n\
         `Client::flush` to wait for delivery.\n\
         \n\
         # Errors\n\
         \n\
         A `TriggerError` when an argument does not serialize, or when no livecheck client is\n\
         installed in this process."
    );
    let maybe_trigger_doc = format!(
        " Triggers a test of the `{fn_name}` case with the case's `probability`.\n\
         \n\
         Draws a number uniformly from `[0, 1)`: when it is below the probability, this is\n\
         `trigger` and returns `Ok(Some(test))`; otherwise nothing is published and it returns\n\
         `Ok(None)`. Call it on live traffic to test a sample of it.\n\
         \n\
         # Errors\n\
         \n\
         As `trigger`, when the test is drawn."
    );
    let maybe_trigger_scope_doc = format!(
        " Triggers a test of the `{fn_name}` case with the case's `probability`, then runs\n\
         `scope` with the test, if one was triggered, as the current test: Faust's\n\
         `async with case.maybe_trigger(id, ...) as test:`.\n\
         \n\
         `scope` gets `Some(test)` when the test was drawn and `None` otherwise, and runs\n\
         either way: it is the service's own work. Inside it, signals sent, and Kafka messages\n\
         and HTTP requests made with livecheck's propagation, carry the test.\n\
         \n\
         # Errors\n\
         \n\
         As `trigger`, when the test is drawn; `scope` does not run then."
    );

    quote! {
        #(#cfg)*
        #(#handle)*
        #[allow(non_camel_case_types, dead_code)]
        #[derive(::core::fmt::Debug, ::core::clone::Clone, ::core::marker::Copy)]
        #vis struct #ident;

        // Everything but the handle in an anonymous const: the descriptor and its registration
        // are no names of the user's module, and the impls apply all the same.
        #(#cfg)*
        const _: () = {
            #[doc(hidden)]
            #[allow(non_upper_case_globals, deprecated, clippy::needless_update)]
            static #descriptor: #root::__private::CaseDescriptor = #root::__private::CaseDescriptor {
                name: <#ident as #root::Case>::NAME,
                options: #options,
                params: &[#(#param_names),*],
                run: #run,
                fake_request: #fake_request,
                hooks: #hooks,
                file: ::core::file!(),
                line: ::core::line!(),
            };

            #root::__private::inventory::submit! {
                #root::__private::CaseRegistration(&#descriptor)
            }

            // Keeps "the trait `Case` is implemented for ..." (every case in the build) out of the
            // error for a signal bound to something that is not a case.
            #[diagnostic::do_not_recommend]
            #[allow(deprecated)]
            impl #root::Case for #ident {
                const NAME: &'static ::core::primitive::str = #name;

                fn descriptor(&self) -> &'static #root::__private::CaseDescriptor {
                    &#descriptor
                }
            }

            #[allow(dead_code, deprecated, clippy::too_many_arguments)]
            impl #ident {
                #[doc = #trigger_doc]
                #vis async fn trigger(
                    &self,
                    id: impl #root::IntoTestId,
                    #(#locals: #types),*
                ) -> ::core::result::Result<#root::TestExecution, #root::TriggerError> {
                    #root::__private::trigger(
                        &#descriptor,
                        #root::__private::test_id(id),
                        ::std::vec![#(#encode),*],
                    )
                    .await
                }

                #[doc = #maybe_trigger_doc]
                #vis async fn maybe_trigger(
                    &self,
                    id: impl #root::IntoTestId,
                    #(#locals: #types),*
                ) -> ::core::result::Result<
                    ::core::option::Option<#root::TestExecution>,
                    #root::TriggerError,
                > {
                    if !#root::__private::should_trigger(&#descriptor) {
                        return ::core::result::Result::Ok(::core::option::Option::None);
                    }
                    ::core::result::Result::map(
                        Self::trigger(self, id, #(#locals),*).await,
                        ::core::option::Option::Some,
                    )
                }

                #[doc = #maybe_trigger_scope_doc]
                #vis async fn maybe_trigger_scope<__LivecheckScope, __LivecheckFuture>(
                    &self,
                    id: impl #root::IntoTestId,
                    #(#locals: #types,)*
                    scope: __LivecheckScope,
                ) -> ::core::result::Result<
                    <__LivecheckFuture as ::core::future::Future>::Output,
                    #root::TriggerError,
                >
                where
                    __LivecheckScope: ::core::ops::FnOnce(
                        ::core::option::Option<::std::sync::Arc<#root::TestExecution>>,
                    ) -> __LivecheckFuture,
                    __LivecheckFuture: ::core::future::Future,
                {
                    let __livecheck_test = Self::maybe_trigger(self, id, #(#locals),*).await?;
                    ::core::result::Result::Ok(
                        #root::__private::run_in_scope(__livecheck_test, scope).await,
                    )
                }

                #[doc(hidden)]
                #(#body)*
                #body_sig #block
            }
        };
    }
}
