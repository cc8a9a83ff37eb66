package ui

// dataMessages are the strings of Connected apps' times, the data export
// and account deletion, merged into the catalog.
var dataMessages = Catalog{
	"en": {
		"account.used":               "last used %s",
		"account.unused":             "not used yet",
		"time.now":                   "just now",
		"time.minutes.one":           "a minute ago",
		"time.minutes.two":           "2 minutes ago",
		"time.minutes.few":           "%d minutes ago",
		"time.minutes.many":          "%d minutes ago",
		"time.hours.one":             "an hour ago",
		"time.hours.two":             "2 hours ago",
		"time.hours.few":             "%d hours ago",
		"time.hours.many":            "%d hours ago",
		"time.on":                    "on %s",
		"security.data.title":        "Your data",
		"security.data.help":         "Download a copy of what is kept about you: your account, your sign-in methods (never their secrets), the apps you allowed, where you are signed in and recent security events, as a JSON file.",
		"security.data.download":     "Download my data",
		"security.delete.title":      "Delete your account",
		"security.delete.help":       "This signs you out everywhere, ends the access of every app you allowed and removes your account. It cannot be undone.",
		"security.delete.link":       "Delete my account…",
		"security.delete.password":   "Enter your password to confirm it is you.",
		"security.delete.fresh":      "Your account has no password. To confirm it is you, sign out, sign in again, and come back here within %d minutes.",
		"security.delete.signout":    "Sign out to sign in again",
		"security.delete.yes":        "Delete my account for good",
		"security.delete.stale":      "You signed in too long ago. Sign out, sign in again and try once more.",
		"security.delete.last_admin": "You are the last admin of this server: without you no one could sign in to its admin console. Make another person admin first.",
		"security.delete.done":       "Your account was deleted. The apps you used were told to sign you out.",
		"security.delete.back":       "Keep my account",
		"notice.deleted.body":        "Hello %s,\n\nYour %s account was deleted just now: you were signed out everywhere and every app you allowed lost its access.\n\nIf it was not you, someone knew your password; use it nowhere else. The account cannot be restored, but you may create a new one.\n",
	},
	"ar": {
		"account.used":               "آخر استخدام %s",
		"account.unused":             "لم يُستخدم بعد",
		"time.now":                   "الآن",
		"time.minutes.one":           "منذ دقيقة",
		"time.minutes.two":           "منذ دقيقتين",
		"time.minutes.few":           "منذ %d دقائق",
		"time.minutes.many":          "منذ %d دقيقة",
		"time.hours.one":             "منذ ساعة",
		"time.hours.two":             "منذ ساعتين",
		"time.hours.few":             "منذ %d ساعات",
		"time.hours.many":            "منذ %d ساعة",
		"time.on":                    "في %s",
		"security.data.title":        "بياناتك",
		"security.data.help":         "نزّل نسخة مما نحفظه عنك: حسابك، وطرق تسجيل دخولك (دون أسرارها أبداً)، والتطبيقات التي أذنت لها، وأين سجّلت دخولك، وأحدث الأحداث الأمنية، في ملف JSON.",
		"security.data.download":     "نزّل بياناتي",
		"security.delete.title":      "احذف حسابك",
		"security.delete.help":       "يسجّل هذا خروجك من كل مكان، وينهي وصول كل تطبيق أذنت له، ويحذف حسابك. لا يمكن التراجع عنه.",
		"security.delete.link":       "احذف حسابي…",
		"security.delete.password":   "أدخل كلمة المرور لتأكيد أنك أنت.",
		"security.delete.fresh":      "ليس لحسابك كلمة مرور. لتأكيد أنك أنت، سجّل خروجك ثم ادخل من جديد وعد إلى هنا خلال %d دقائق.",
		"security.delete.signout":    "سجّل الخروج لتدخل من جديد",
		"security.delete.yes":        "احذف حسابي نهائياً",
		"security.delete.stale":      "سجّلت دخولك منذ وقت طويل. سجّل خروجك وادخل من جديد ثم حاول مرة أخرى.",
		"security.delete.last_admin": "أنت آخر مسؤول عن هذا الخادم: بدونك لن يستطيع أحد الدخول إلى لوحة إدارته. اجعل شخصًا آخر مسؤولًا أولًا.",
		"security.delete.done":       "تم حذف حسابك. وأُبلغت التطبيقات التي استخدمتها بتسجيل خروجك.",
		"security.delete.back":       "أبقِ حسابي",
		"notice.deleted.body":        "مرحباً %s،\n\nحُذف حسابك في %s قبل قليل: سُجّل خروجك من كل مكان وفقد كل تطبيق أذنت له وصوله.\n\nإن لم تكن أنت من فعل ذلك، فهناك من عرف كلمة مرورك؛ لا تستعملها في أي مكان آخر. لا يمكن استعادة الحساب، لكن يمكنك إنشاء حساب جديد.\n",
	},
}

func init() {
	for lang, msgs := range dataMessages {
		for k, v := range msgs {
			catalog[lang][k] = v
		}
	}
}
