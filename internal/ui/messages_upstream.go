package ui

// upstreamMessages are the strings of sign-in through upstream identity
// providers (package upstream), merged into the catalog. The first
// argument of each message is the upstream's name.
var upstreamMessages = Catalog{
	"en": {
		"upstream.title":               "Sign in with another provider",
		"upstream.continue":            "Continue with %s",
		"upstream.or":                  "Or",
		"upstream.back":                "Back to sign-in",
		"upstream.denied":              "You cancelled signing in with %s. Nothing was shared with us.",
		"upstream.failed":              "Signing in with %s did not work. Try again, or sign in another way.",
		"upstream.state":               "This sign-in with %s was not started in this browser, has expired, or was used already. Start again from the sign-in page.",
		"upstream.expired":             "This sign-in with %s took too long. Start again from the sign-in page.",
		"upstream.unavailable":         "%s cannot be reached right now. Try again later, or sign in another way.",
		"upstream.link":                "An account here already uses the address %[2]s. Sign in to it once, the usual way, to link your %[1]s account to it.",
		"upstream.link.go":             "Sign in to link",
		"upstream.confirm.title":       "Link an account",
		"upstream.confirm.question":    "Link your %s account (%s) to this account? You will be able to sign in with it.",
		"upstream.confirm.link":        "Link",
		"upstream.confirm.no":          "Don't link",
		"notice.event.upstream_linked": "an account of another provider was linked: you can sign in with it",
		"upstream.email_taken":         "The address of your %s account belongs to an account here, and it was not verified. Sign in to that account the usual way.",
		"upstream.domain":              "The address of your %s account is not in a domain this service accepts.",
		"upstream.no_account":          "No account here is linked to your %s account.",
		"upstream.ended":               "You signed out at the provider you signed in with before signing in here was finished. Start again from the sign-in page.",
		"security.upstream.title":      "Linked accounts",
		"security.upstream.none":       "No account of another provider is linked.",
		"security.upstream.since":      "linked %s",
		"security.upstream.unlink":     "Unlink",
		"security.upstream.last":       "You cannot unlink it: it is your only way to sign in. Set a password or add a passkey first.",
		"security.upstream.lastnote":   "This account is your only way to sign in, so it cannot be unlinked. To unlink it, set a password or add a passkey first.",
		"security.upstream.unlinked":   "The account was unlinked.",
	},
	"ar": {
		"upstream.title":               "تسجيل الدخول بمزوّد آخر",
		"upstream.continue":            "المتابعة باستخدام %s",
		"upstream.or":                  "أو",
		"upstream.back":                "العودة إلى تسجيل الدخول",
		"upstream.denied":              "ألغيت تسجيل الدخول باستخدام %s. لم تتم مشاركة أي شيء معنا.",
		"upstream.failed":              "لم ينجح تسجيل الدخول باستخدام %s. حاول مرة أخرى، أو سجّل الدخول بطريقة أخرى.",
		"upstream.state":               "لم يبدأ تسجيل الدخول هذا باستخدام %s في هذا المتصفح، أو انتهت صلاحيته، أو استُخدم من قبل. ابدأ من جديد من صفحة تسجيل الدخول.",
		"upstream.expired":             "استغرق تسجيل الدخول هذا باستخدام %s وقتًا طويلًا. ابدأ من جديد من صفحة تسجيل الدخول.",
		"upstream.unavailable":         "لا يمكن الوصول إلى %s الآن. حاول لاحقًا، أو سجّل الدخول بطريقة أخرى.",
		"upstream.link":                "يوجد هنا حساب يستخدم العنوان %[2]s. سجّل الدخول إليه مرة واحدة بالطريقة المعتادة لربط حسابك في %[1]s به.",
		"upstream.link.go":             "سجّل الدخول للربط",
		"upstream.confirm.title":       "ربط حساب",
		"upstream.confirm.question":    "هل تريد ربط حسابك في %s (%s) بهذا الحساب؟ ستتمكن من تسجيل الدخول به.",
		"upstream.confirm.link":        "اربط",
		"upstream.confirm.no":          "لا تربط",
		"notice.event.upstream_linked": "رُبط حساب لدى مزوّد آخر: يمكنك تسجيل الدخول به",
		"upstream.email_taken":         "عنوان حسابك في %s يخص حسابًا هنا، ولم يتم التحقق منه. سجّل الدخول إلى ذلك الحساب بالطريقة المعتادة.",
		"upstream.domain":              "عنوان حسابك في %s ليس ضمن نطاق تقبله هذه الخدمة.",
		"upstream.no_account":          "لا يوجد حساب هنا مرتبط بحسابك في %s.",
		"upstream.ended":               "سجّلت الخروج لدى المزوّد الذي سجّلت الدخول به قبل أن يكتمل تسجيل الدخول هنا. ابدأ من جديد من صفحة تسجيل الدخول.",
		"security.upstream.title":      "الحسابات المرتبطة",
		"security.upstream.none":       "لا يوجد حساب مرتبط من مزوّد آخر.",
		"security.upstream.since":      "مرتبط منذ %s",
		"security.upstream.unlink":     "إلغاء الربط",
		"security.upstream.last":       "لا يمكنك إلغاء ربطه: إنه طريقتك الوحيدة لتسجيل الدخول. عيّن كلمة مرور أو أضف مفتاح مرور أولًا.",
		"security.upstream.lastnote":   "هذا الحساب هو طريقتك الوحيدة لتسجيل الدخول، لذا لا يمكن إلغاء ربطه. لإلغاء ربطه، عيّن كلمة مرور أو أضف مفتاح مرور أولًا.",
		"security.upstream.unlinked":   "تم إلغاء ربط الحساب.",
	},
}

func init() {
	for lang, msgs := range upstreamMessages {
		for k, v := range msgs {
			catalog[lang][k] = v
		}
	}
}
