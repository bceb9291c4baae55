package ingest

import "strings"

// Countries maps the country names of the Online Retail data set to ISO
// 3166-1 alpha-2 codes. "Channel Islands" (Jersey and Guernsey have codes of
// their own), "European Community" and "Unspecified" have none: their
// events get no region.
var Countries = map[string]string{
	"Australia": "AU", "Austria": "AT", "Bahrain": "BH", "Belgium": "BE", "Brazil": "BR", "Canada": "CA",
	"Channel Islands": "", "Cyprus": "CY", "Czech Republic": "CZ", "Denmark": "DK", "EIRE": "IE",
	"European Community": "", "Finland": "FI", "France": "FR", "Germany": "DE", "Greece": "GR",
	"Hong Kong": "HK", "Iceland": "IS", "Israel": "IL", "Italy": "IT", "Japan": "JP", "Lebanon": "LB",
	"Lithuania": "LT", "Malta": "MT", "Netherlands": "NL", "Norway": "NO", "Poland": "PL", "Portugal": "PT",
	"RSA": "ZA", "Saudi Arabia": "SA", "Singapore": "SG", "Spain": "ES", "Sweden": "SE", "Switzerland": "CH",
	"USA": "US", "United Arab Emirates": "AE", "United Kingdom": "GB", "Unspecified": "",
}

// categoryRules map words of a product description to a category path; the
// first rule with a matching word wins. The description itself is dropped.
var categoryRules = []struct {
	category string
	words    []string
}{
	{"seasonal/christmas", []string{"CHRISTMAS", "XMAS", "ADVENT", "SANTA", "REINDEER", "SNOWFLAKE"}},
	{"seasonal/easter", []string{"EASTER", "EGG"}},
	{"bags", []string{"BAG", "BAGS", "TOTE", "SHOPPER"}},
	{"home/lighting", []string{"CANDLE", "T-LIGHT", "LANTERN", "LIGHT", "LIGHTS", "LAMP", "NIGHTLIGHT"}},
	{"kitchen", []string{"MUG", "CUP", "CUPS", "PLATE", "PLATES", "BOWL", "TEA", "TEAPOT", "CAKE", "BAKING", "JAR", "BOTTLE", "LUNCH", "NAPKINS", "CUTLERY", "APRON", "TRAY", "COASTER", "TIN", "TINS"}},
	{"stationery", []string{"CARD", "CARDS", "WRAP", "PAPER", "NOTEBOOK", "PEN", "PENCIL", "PENCILS", "STICKER", "STICKERS", "ENVELOPE", "CALENDAR", "DIARY", "CHALKBOARD"}},
	{"toys", []string{"TOY", "GAME", "DOLL", "PLAYHOUSE", "SPACEBOY", "CHILDRENS", "CHILDS", "BABY", "JIGSAW", "SKITTLES", "DOMINOES"}},
	{"garden", []string{"GARDEN", "PLANT", "PLANTER", "FLOWER", "BIRD", "WATERING", "POT"}},
	{"accessories", []string{"NECKLACE", "BRACELET", "EARRINGS", "RING", "JEWEL", "HAIR", "UMBRELLA", "PURSE", "WALLET", "SCARF", "KEY"}},
	{"home/decor", []string{"SIGN", "FRAME", "CLOCK", "CUSHION", "DOORMAT", "HOOK", "HOOKS", "DRAWER", "BOX", "HEART", "DECORATION", "ORNAMENT", "MIRROR", "VASE", "WREATH", "BUNTING", "GARLAND", "HANGING", "HOLDER", "DOORSTOP", "CABINET", "SHELF"}},
}

// Category returns the category a description maps to, or "".
func Category(description string) string {
	words := strings.FieldsFunc(strings.ToUpper(description), func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r == '-')
	})
	for _, rule := range categoryRules {
		for _, w := range words {
			for _, x := range rule.words {
				if w == x {
					return rule.category
				}
			}
		}
	}
	return ""
}
