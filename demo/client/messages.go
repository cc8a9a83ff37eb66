package client

import (
	"fmt"
)

var catalog = map[string]map[string]string{
	"en": {
		"tagline":                 "Your notes, your files, one place.",
		"signup":                  "Sign up with bawwab",
		"signup.help":             "You will sign in at bawwab. Notes never sees your password, and you choose what to share.",
		"connected":               "Connected with bawwab",
		"shared":                  "What bawwab shares with %s",
		"name":                    "Name",
		"email":                   "Email",
		"photo":                   "Photo",
		"files":                   "Files",
		"not_shared":              "not shared",
		"disconnect":              "Disconnect",
		"reconnect":               "Connect again",
		"trace":                   "See how it worked: flow trace",
		"msg.denied":              "You denied access, so Notes has no data from bawwab. You can try again whenever you like.",
		"msg.revoked":             "Notes lost access: it was revoked at bawwab.",
		"msg.state":               "The sign-in response did not match a request of this browser, so it was ignored.",
		"msg.mixup":               "The response came from an unexpected authorization server, so it was ignored.",
		"msg.error":               "Sign-in failed: %s (%s).",
		"trace.title":             "Flow trace",
		"trace.empty":             "No flow yet. Sign up first.",
		"trace.intro":             "Every HTTP exchange of the last sign-in, in order. Tokens and secrets are cut to their first characters.",
		"trace.browser":           "Browser",
		"trace.server":            "Back end",
		"trace.request":           "Request",
		"trace.response":          "Response",
		"trace.authorize":         "Redirect to bawwab",
		"trace.authorize.explain": "The app sends the browser to bawwab's /authorize with its client_id, the scopes it wants, a state and a PKCE code_challenge.",
		"trace.callback":          "Back with a code",
		"trace.callback.explain":  "bawwab sends the browser back with a short-lived, single-use code, the same state, and iss naming itself.",
		"trace.token":             "Code for tokens",
		"trace.token.explain":     "The app's back end sends the code, its client credentials and the PKCE code_verifier to /token and gets tokens.",
		"trace.refresh":           "Refresh",
		"trace.refresh.explain":   "The access token expired: the back end trades the refresh token for new tokens (the old refresh token dies).",
		"trace.api":               "API call",
		"trace.api.explain":       "The app calls the provider's API with the access token; the API checks signature, audience and scope.",
		"back":                    "Back to the app",
	},
	"ar": {
		"tagline":                 "ملاحظاتك وملفاتك في مكان واحد.",
		"signup":                  "سجّل باستخدام بوّاب",
		"signup.help":             "ستسجّل الدخول في بوّاب. لن يرى تطبيق الملاحظات كلمة مرورك، وأنت تختار ما تشاركه.",
		"connected":               "متصل عبر بوّاب",
		"shared":                  "ما يشاركه بوّاب مع %s",
		"name":                    "الاسم",
		"email":                   "البريد الإلكتروني",
		"photo":                   "الصورة",
		"files":                   "الملفات",
		"not_shared":              "غير مُشارَك",
		"disconnect":              "قطع الاتصال",
		"reconnect":               "الاتصال من جديد",
		"trace":                   "شاهد كيف جرى ذلك: تتبّع التدفق",
		"msg.denied":              "رفضت منح الإذن، لذا لا يملك تطبيق الملاحظات أي بيانات من بوّاب. يمكنك المحاولة متى شئت.",
		"msg.revoked":             "فقد تطبيق الملاحظات الوصول: تم سحب الإذن في بوّاب.",
		"msg.state":               "لم تطابق استجابة تسجيل الدخول أي طلب من هذا المتصفح، فتم تجاهلها.",
		"msg.mixup":               "جاءت الاستجابة من خادم تفويض غير متوقع، فتم تجاهلها.",
		"msg.error":               "فشل تسجيل الدخول: %s (%s).",
		"trace.title":             "تتبّع التدفق",
		"trace.empty":             "لا يوجد تدفق بعد. سجّل أولاً.",
		"trace.intro":             "كل تبادل HTTP في آخر تسجيل دخول، بالترتيب. الرموز والأسرار مقتطعة إلى أحرفها الأولى.",
		"trace.browser":           "المتصفح",
		"trace.server":            "الخادم الخلفي",
		"trace.request":           "الطلب",
		"trace.response":          "الاستجابة",
		"trace.authorize":         "التوجيه إلى بوّاب",
		"trace.authorize.explain": "يرسل التطبيق المتصفح إلى ‎/authorize في بوّاب مع معرّف العميل والصلاحيات المطلوبة وقيمة state وتحدّي PKCE.",
		"trace.callback":          "العودة مع رمز",
		"trace.callback.explain":  "يعيد بوّاب المتصفح مع رمز قصير العمر يُستخدم مرة واحدة، ونفس state، وiss باسمه.",
		"trace.token":             "استبدال الرمز بالتوكنات",
		"trace.token.explain":     "يرسل الخادم الخلفي للتطبيق الرمز وبيانات اعتماده وcode_verifier إلى ‎/token فيحصل على التوكنات.",
		"trace.refresh":           "التجديد",
		"trace.refresh.explain":   "انتهت صلاحية توكن الوصول: يستبدل الخادم الخلفي توكن التجديد بتوكنات جديدة (ويبطل القديم).",
		"trace.api":               "استدعاء الواجهة",
		"trace.api.explain":       "يستدعي التطبيق واجهة المزوّد بتوكن الوصول؛ تتحقق الواجهة من التوقيع والجمهور والصلاحية.",
		"back":                    "العودة إلى التطبيق",
	},
}

// T returns the demo app's message key in lang.
func T(lang, key string, args ...any) string {
	m, ok := catalog[lang][key]
	if !ok {
		m, ok = catalog["en"][key]
	}
	if !ok {
		return key
	}
	if len(args) > 0 {
		return fmt.Sprintf(m, args...)
	}
	return m
}
