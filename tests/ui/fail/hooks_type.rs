// `hooks = Type` names a type that implements `livecheck::CaseHooks` and `Default`; the error
// is on the path.

struct NotHooks;

struct NoDefault;

impl livecheck::CaseHooks for NoDefault {}

#[livecheck::case(hooks = NotHooks)]
async fn not_hooks() {}

#[livecheck::case(hooks = NoDefault)]
async fn no_default() {}

#[livecheck::case(hooks = Missing)]
async fn missing() {}

fn main() {}
