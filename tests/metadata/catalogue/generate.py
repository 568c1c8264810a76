"""Write the labelled metadata catalogue: ``records.json`` and ``queries.json`` beside this file.

``python tests/metadata/catalogue/generate.py`` (deterministic: the same files every run).

The catalogue is a music label's: tracks, albums, artists and contracts made from the lists
below, and royalty schemas, user-data schemas and technical pipelines written out by hand. Every
record carries *facets* (its genre, mood, contract type, territory, topic tags...) that its
content states in words; the facets stay here and never reach the JSON. A query is a text and a
predicate over facets, and its relevant set is exactly the records the predicate accepts, so a
judgement is a rule anyone can read, not a guess. Query texts paraphrase the records or are in
another language (German queries over English records), so keyword overlap alone does not find
them.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

SCHEMA, BUSINESS, TECHNICAL = "SCHEMA", "BUSINESS", "TECHNICAL"

Facets = dict[str, Any]


@dataclass
class Draft:
    key: str
    metadata_type: str
    schema_name: str
    language: str
    content: dict[str, Any]
    facets: Facets = field(default_factory=dict)


# --- artists -------------------------------------------------------------------------------------

# name, genre, city, country code, language of their texts, act type, formed
ARTISTS: list[tuple[str, str, str, str, str, str, int]] = [
    ("Nachtfalter", "techno", "Berlin", "DE", "de", "duo", 2011),
    ("Kern & Klang", "techno", "Leipzig", "DE", "de", "band", 2015),
    ("Grid Theory", "techno", "Detroit", "US", "en", "solo", 2008),
    ("Les Étoiles Froides", "synthwave", "Lyon", "FR", "fr", "band", 2013),
    ("Neon Coast", "synthwave", "Los Angeles", "US", "en", "duo", 2016),
    ("Luna Verde", "indie pop", "Madrid", "ES", "es", "band", 2014),
    ("The Paper Lanterns", "indie pop", "Manchester", "GB", "en", "band", 2010),
    ("Frühlingsrauschen", "indie pop", "Hamburg", "DE", "de", "band", 2017),
    ("Kofi Mensah", "afrobeats", "Accra", "GH", "en", "solo", 2018),
    ("Ada Okafor", "afrobeats", "Lagos", "NG", "en", "solo", 2016),
    ("Zanele Dube", "afrobeats", "Johannesburg", "ZA", "en", "solo", 2019),
    ("Sol de Medellín", "reggaeton", "Medellín", "CO", "es", "band", 2012),
    ("Marisol Vega", "reggaeton", "Buenos Aires", "AR", "es", "solo", 2017),
    ("Camille Arnaud Trio", "jazz", "Paris", "FR", "fr", "trio", 2009),
    ("Blue Hour Quartet", "jazz", "Chicago", "US", "en", "band", 2005),
    ("Ingrid Solberg", "neoclassical", "Oslo", "NO", "en", "solo", 2014),
    ("Elias Brandt", "neoclassical", "Vienna", "AT", "de", "solo", 2012),
    ("Verbal Kint", "hip hop", "London", "GB", "en", "solo", 2013),
    ("Zone Rouge", "hip hop", "Marseille", "FR", "fr", "duo", 2015),
    ("K-Dot Weiss", "hip hop", "Frankfurt", "DE", "de", "solo", 2018),
    ("Ironwood", "metal", "Birmingham", "GB", "en", "band", 2004),
    ("Eisenherz", "metal", "Stuttgart", "DE", "de", "band", 2007),
    ("Maeve Donnelly", "folk", "Galway", "IE", "en", "solo", 2011),
    ("Los Caminantes", "folk", "Seville", "ES", "es", "band", 2008),
    ("Tidal Drift", "ambient", "Reykjavik", "IS", "en", "solo", 2015),
    ("Stille Wasser", "ambient", "Munich", "DE", "de", "duo", 2019),
    ("Brume", "ambient", "Montreal", "CA", "fr", "solo", 2016),
    ("Aurora Lane", "pop", "Toronto", "CA", "en", "solo", 2018),
    ("Seoul Satellites", "pop", "Seoul", "KR", "en", "band", 2020),
    ("Mila Kovač", "pop", "Zagreb", "HR", "en", "solo", 2017),
]
ARTIST = {a[0]: a for a in ARTISTS}
GENRES = sorted({a[1] for a in ARTISTS}, key=[a[1] for a in ARTISTS].index)
INSTRUMENTAL_GENRES = {"techno", "ambient", "neoclassical"}
ELECTRONIC = {"techno", "synthwave", "ambient"}

GENRE_LABEL = {
    "en": {g: g for g in GENRES} | {"neoclassical": "neo-classical piano"},
    "de": {g: g for g in GENRES}
    | {"neoclassical": "Neoklassik (Klavier)", "folk": "Folk", "pop": "Pop", "metal": "Metal"},
    "fr": {g: g for g in GENRES} | {"neoclassical": "piano néo-classique", "hip hop": "rap"},
    "es": {g: g for g in GENRES} | {"neoclassical": "piano neoclásico", "folk": "folk"},
}

COUNTRY = {
    "DE": "Germany",
    "US": "United States",
    "FR": "France",
    "ES": "Spain",
    "GB": "United Kingdom",
    "GH": "Ghana",
    "NG": "Nigeria",
    "ZA": "South Africa",
    "CO": "Colombia",
    "AR": "Argentina",
    "NO": "Norway",
    "AT": "Austria",
    "IE": "Ireland",
    "IS": "Iceland",
    "CA": "Canada",
    "KR": "South Korea",
    "HR": "Croatia",
}

BIO = {
    "en": "{name} is a {act} act from {city}, {country}, making {genre} since {formed}. {extra}",
    "de": "{name} ist ein {act}-Projekt aus {city} ({country}) und macht seit {formed} {genre}. "
    "{extra}",
    "fr": "{name} est un projet {act} de {city} ({country}) qui fait du {genre} depuis {formed}. "
    "{extra}",
    "es": "{name} es un proyecto {act} de {city} ({country}) que hace {genre} desde {formed}. "
    "{extra}",
}
BIO_EXTRA = {
    "techno": "Known for long hypnotic sets in warehouse clubs.",
    "synthwave": "Analogue synthesizers and drum machines in the spirit of the eighties.",
    "indie pop": "Jangly guitars, catchy choruses and self-released cassettes.",
    "afrobeats": "Highlife rhythms meet modern pop production.",
    "reggaeton": "Dembow beats and Caribbean hooks for the clubs.",
    "jazz": "Acoustic improvisation rooted in hard bop.",
    "neoclassical": "Solo felt piano recorded close-miked at home.",
    "hip hop": "Sharp lyricism over boom-bap and trap beats.",
    "metal": "Down-tuned riffs and relentless double-kick drumming.",
    "folk": "Acoustic guitar, fiddle and traditional songs.",
    "ambient": "Slow drones and field recordings.",
    "pop": "Radio-ready hooks with glossy production.",
}
ACT = {
    "en": {"solo": "solo", "duo": "duo", "band": "band", "trio": "trio"},
    "de": {"solo": "Solo", "duo": "Duo", "band": "Band", "trio": "Trio"},
    "fr": {"solo": "solo", "duo": "en duo", "band": "de groupe", "trio": "en trio"},
    "es": {"solo": "solista", "duo": "a dúo", "band": "de banda", "trio": "en trío"},
}


def artists() -> list[Draft]:
    drafts = []
    for i, (name, genre, city, cc, lang, act, formed) in enumerate(ARTISTS):
        # A few of the German- and Spanish-speaking artists keep an English bio for export.
        text_lang = lang if i % 4 != 3 else "en"
        bio = (
            BIO[text_lang]
            .format(
                name=name,
                act=ACT[text_lang][act],
                city=city,
                country=COUNTRY[cc],
                genre=GENRE_LABEL[text_lang][genre],
                formed=formed,
                extra=BIO_EXTRA[genre] if text_lang == "en" else "",
            )
            .strip()
        )
        content = {
            "name": name,
            "country": COUNTRY[cc],
            "home_city": city,
            "primary_genre": GENRE_LABEL[text_lang][genre],
            "act_type": act,
            "formed": formed,
            "biography": bio,
            "management_contact": f"mgmt+{i:02d}@example-label.com",
        }
        facets = {"kind": "artist", "artist": name, "genre": genre, "country": cc, "lang": lang}
        drafts.append(Draft(f"artist-{i:03d}", BUSINESS, "artist", text_lang, content, facets))
    return drafts


# --- tracks --------------------------------------------------------------------------------------

MOODS = ["melancholic", "euphoric", "dark", "dreamy", "aggressive", "romantic", "uplifting", "calm"]
MOOD_WORD = {
    "en": {m: m for m in MOODS},
    "de": dict(
        zip(
            MOODS,
            [
                "melancholisch",
                "euphorisch",
                "düster",
                "verträumt",
                "aggressiv",
                "romantisch",
                "aufbauend",
                "ruhig",
            ],
            strict=True,
        )
    ),
    "fr": dict(
        zip(
            MOODS,
            [
                "mélancolique",
                "euphorique",
                "sombre",
                "rêveur",
                "agressif",
                "romantique",
                "entraînant",
                "calme",
            ],
            strict=True,
        )
    ),
    "es": dict(
        zip(
            MOODS,
            [
                "melancólico",
                "eufórico",
                "oscuro",
                "soñador",
                "agresivo",
                "romántico",
                "optimista",
                "tranquilo",
            ],
            strict=True,
        )
    ),
}
MOOD_SENTENCE = {
    "melancholic": {
        "en": "Wistful and heavy-hearted, it lingers on loss.",
        "de": "Wehmütig und schwermütig, getragen von einem Gefühl des Verlusts.",
        "fr": "Nostalgique et lourd de regrets.",
        "es": "Nostálgica y apesadumbrada, habla de la pérdida.",
    },
    "euphoric": {
        "en": "A rush of elation built for peak-time dancefloors.",
        "de": "Ein Rausch purer Freude für den Höhepunkt der Nacht.",
        "fr": "Une montée d'allégresse pour le cœur de la nuit.",
        "es": "Una explosión de alegría para la pista de baile.",
    },
    "dark": {
        "en": "Sinister and brooding, with ominous low-end.",
        "de": "Finster und bedrohlich, mit grollendem Bass.",
        "fr": "Inquiétant et ténébreux, avec des basses menaçantes.",
        "es": "Siniestra y sombría, con graves amenazantes.",
    },
    "dreamy": {
        "en": "Hazy and floating, like drifting half-asleep.",
        "de": "Verschwommen und schwebend, wie im Halbschlaf.",
        "fr": "Vaporeux et flottant, comme dans un demi-sommeil.",
        "es": "Brumosa y flotante, como en un duermevela.",
    },
    "aggressive": {
        "en": "Furious and relentless, all distortion and shouted hooks.",
        "de": "Wütend und unerbittlich, voller Verzerrung.",
        "fr": "Furieux et implacable, saturé de distorsion.",
        "es": "Furiosa e implacable, llena de distorsión.",
    },
    "romantic": {
        "en": "Tender and intimate, a love song at heart.",
        "de": "Zärtlich und innig, im Kern ein Liebeslied.",
        "fr": "Tendre et intime, une chanson d'amour.",
        "es": "Tierna e íntima, en el fondo una canción de amor.",
    },
    "uplifting": {
        "en": "Hopeful and bright, it lifts the listener up.",
        "de": "Hoffnungsvoll und hell, sie hebt die Stimmung.",
        "fr": "Lumineux et plein d'espoir.",
        "es": "Luminosa y esperanzadora, levanta el ánimo.",
    },
    "calm": {
        "en": "Peaceful and unhurried, gentle enough for background listening.",
        "de": "Friedlich und gelassen, sanft genug zum Nebenbei-Hören.",
        "fr": "Paisible et posé, assez doux pour une écoute de fond.",
        "es": "Apacible y pausada, suave para escuchar de fondo.",
    },
}
TRACK_LINE = {
    "en": "A {genre} track at {bpm} BPM{vocals}.",
    "de": "Ein {genre}-Stück mit {bpm} BPM{vocals}.",
    "fr": "Un morceau {genre} à {bpm} BPM{vocals}.",
    "es": "Un tema de {genre} a {bpm} BPM{vocals}.",
}
VOCALS = {
    "en": (", instrumental", ", with vocals"),
    "de": (", instrumental", ", mit Gesang"),
    "fr": (", instrumental", ", chanté"),
    "es": (", instrumental", ", con voz"),
}
TITLE_WORDS = {
    "en": (
        [
            "Midnight",
            "Paper",
            "Golden",
            "Silent",
            "Electric",
            "Hollow",
            "Northern",
            "Velvet",
            "Broken",
            "Neon",
            "Distant",
            "Crimson",
        ],
        [
            "Train",
            "Skies",
            "Harbour",
            "Signal",
            "Garden",
            "Mirror",
            "Frequency",
            "Tide",
            "Parade",
            "Lights",
            "Static",
            "Orbit",
        ],
    ),
    "de": (
        ["Kalte", "Leise", "Goldene", "Späte", "Dunkle", "Helle", "Ferne", "Letzte"],
        ["Nacht", "Stadt", "Welle", "Stunde", "Straße", "Stille", "Sonne", "Brücke"],
    ),
    "fr": (
        ["Nuit", "Ville", "Lumière", "Vague", "Route", "Pluie", "Ombre", "Saison"],
        ["blanche", "perdue", "froide", "lointaine", "dorée", "secrète", "bleue", "douce"],
    ),
    "es": (
        ["Noche", "Luna", "Calle", "Marea", "Sombra", "Ciudad", "Lluvia", "Fiesta"],
        ["roja", "eterna", "perdida", "dorada", "tranquila", "salvaje", "blanca", "lejana"],
    ),
}
BPM = {
    "techno": 128,
    "synthwave": 100,
    "indie pop": 112,
    "afrobeats": 104,
    "reggaeton": 94,
    "jazz": 120,
    "neoclassical": 70,
    "hip hop": 88,
    "metal": 160,
    "folk": 96,
    "ambient": 60,
    "pop": 118,
}
# The moods a genre's tracks have (no aggressive ambient).
GENRE_MOODS = {
    "techno": ["dark", "euphoric", "aggressive", "dreamy"],
    "synthwave": ["dreamy", "dark", "melancholic", "euphoric", "romantic"],
    "indie pop": ["melancholic", "uplifting", "romantic", "dreamy"],
    "afrobeats": ["euphoric", "uplifting", "romantic", "calm"],
    "reggaeton": ["euphoric", "romantic", "uplifting", "dark"],
    "jazz": ["calm", "romantic", "melancholic", "dreamy"],
    "neoclassical": ["melancholic", "calm", "dreamy", "uplifting"],
    "hip hop": ["aggressive", "dark", "melancholic", "uplifting"],
    "metal": ["aggressive", "dark", "melancholic", "euphoric"],
    "folk": ["melancholic", "calm", "romantic", "uplifting"],
    "ambient": ["calm", "dreamy", "dark", "melancholic"],
    "pop": ["uplifting", "euphoric", "romantic", "melancholic"],
}
KEYS = ["C minor", "A minor", "D major", "F major", "E minor", "G major", "B flat major"]
LYRICS_LANGUAGE = {"KR": "ko"}


def tracks(rng: random.Random) -> list[Draft]:
    drafts = []
    for g, genre in enumerate(GENRES):
        members = [a for a in ARTISTS if a[1] == genre]
        for i in range(10):
            name, _, _, cc, lang, _, _ = members[i % len(members)]
            # About a third of German/French/Spanish artists' tracks carry English text too.
            text_lang = lang if (i + g) % 3 else "en"
            pool = GENRE_MOODS[genre]
            mood = pool[(i // 2 + g) % len(pool)]
            instrumental = genre in INSTRUMENTAL_GENRES or (genre == "jazz" and i % 3 != 0)
            explicit = (genre == "hip hop" and i % 2 == 0) or (genre == "metal" and i % 3 == 0)
            sync = (i + g) % 3 == 0
            bpm = BPM[genre] + (i * 7) % 15 - 7
            first, second = TITLE_WORDS[lang]
            title = f"{rng.choice(first)} {rng.choice(second)}"
            lyrics = None if instrumental else LYRICS_LANGUAGE.get(cc, lang)
            vocals = VOCALS[text_lang][0 if instrumental else 1]
            description = (
                TRACK_LINE[text_lang].format(
                    genre=GENRE_LABEL[text_lang][genre], bpm=bpm, vocals=vocals
                )
                + " "
                + MOOD_SENTENCE[mood][text_lang]
            )
            number = g * 10 + i
            content = {
                "title": title,
                "artist": name,
                "genre": GENRE_LABEL[text_lang][genre],
                "mood": MOOD_WORD[text_lang][mood],
                "bpm": bpm,
                "key": KEYS[number % len(KEYS)],
                "duration": f"{2 + number % 4}:{(number * 17) % 60:02d}",
                "isrc": f"{cc}-TNY-{14 + number % 11}-{number:05d}",
                "explicit": explicit,
                "instrumental": instrumental,
                "lyrics_language": lyrics,
                "cleared_for_sync": sync,
                "description": description,
            }
            facets = {
                "kind": "track",
                "artist": name,
                "genre": genre,
                "mood": mood,
                "instrumental": instrumental,
                "explicit": explicit,
                "sync": sync,
                "lyrics": lyrics,
                "country": cc,
            }
            drafts.append(
                Draft(f"track-{number:03d}", BUSINESS, "track", text_lang, content, facets)
            )
    return drafts


# --- albums --------------------------------------------------------------------------------------

FORMATS = ["studio album", "EP", "live album", "deluxe reissue", "compilation", "remix album"]
FORMAT_TEXT = {
    "studio album": {
        "en": "Full-length studio record of new songs.",
        "de": "Studioalbum in voller Länge mit neuen Songs.",
        "fr": "Album studio complet de nouveaux titres.",
        "es": "Disco de estudio completo con canciones nuevas.",
    },
    "EP": {
        "en": "A short release of a few songs.",
        "de": "Eine kurze Veröffentlichung mit wenigen Songs.",
        "fr": "Un format court de quelques titres.",
        "es": "Un lanzamiento corto de pocas canciones.",
    },
    "live album": {
        "en": "Recorded on stage during the last tour, audience noise included.",
        "de": "Auf der Bühne während der letzten Tour aufgenommen, mit Publikum.",
        "fr": "Enregistré sur scène pendant la dernière tournée, avec le public.",
        "es": "Grabado en directo durante la última gira, con el público.",
    },
    "deluxe reissue": {
        "en": "Remastered tenth-anniversary edition with bonus demos and liner notes.",
        "de": "Remasterte Jubiläumsausgabe zum zehnten Jahrestag mit Bonus-Demos.",
        "fr": "Réédition remasterisée pour le dixième anniversaire, avec démos inédites.",
        "es": "Reedición remasterizada del décimo aniversario con maquetas extra.",
    },
    "compilation": {
        "en": "A best-of collecting the singles released so far.",
        "de": "Ein Best-of mit allen bisherigen Singles.",
        "fr": "Un best-of réunissant les singles parus jusqu'ici.",
        "es": "Un grandes éxitos que reúne los sencillos publicados.",
    },
    "remix album": {
        "en": "Other producers rework the songs of the last record.",
        "de": "Andere Produzenten bearbeiten die Songs der letzten Platte neu.",
        "fr": "D'autres producteurs retravaillent les titres du dernier disque.",
        "es": "Otros productores reinterpretan las canciones del último disco.",
    },
}
ALBUM_NAMES = [
    "Afterglow",
    "Concrete Bloom",
    "Low Tide",
    "Static Hearts",
    "Cartography",
    "Slow Fire",
    "Wide Awake",
    "Nightshift",
    "Salt & Iron",
    "Small Hours",
    "Glass City",
    "Homecoming",
]


def albums(tracks_by_artist: dict[str, list[Draft]]) -> list[Draft]:
    drafts = []
    for n in range(40):
        name, genre, _, cc, lang, _, formed = ARTISTS[(n * 11) % len(ARTISTS)]
        fmt = FORMATS[(n * 5 + n // 6) % len(FORMATS)]
        text_lang = lang if n % 2 else "en"
        year = min(2025, formed + 2 + (n * 3) % 9)
        vinyl = n % 3 != 1
        songs = [t.content["title"] for t in tracks_by_artist[name]][: 5 if fmt == "EP" else 10]
        content = {
            "title": ALBUM_NAMES[n % len(ALBUM_NAMES)]
            + (f" {['II', 'Live', ''][n % 3]}" if n >= 12 else ""),
            "artist": name,
            "format": fmt,
            "release_date": f"{year}-{1 + n % 12:02d}-{1 + (n * 7) % 28:02d}",
            "upc": f"0{(n * 7919) % 10**11:011d}",
            "physical_formats": ["CD", "vinyl LP"] if vinyl else ["CD"],
            "label": "Tenantry Records",
            "tracklist": songs,
            "notes": FORMAT_TEXT[fmt][text_lang],
        }
        facets = {
            "kind": "album",
            "artist": name,
            "genre": genre,
            "format": fmt,
            "year": year,
            "vinyl": vinyl,
            "country": cc,
        }
        drafts.append(Draft(f"album-{n:03d}", BUSINESS, "album", text_lang, content, facets))
    return drafts


# --- contracts -----------------------------------------------------------------------------------

CONTRACT_TYPES = ["recording", "publishing", "distribution", "sync licence", "remix", "producer"]
TERRITORIES = {
    "worldwide": ["worldwide"],
    "DACH": ["Germany", "Austria", "Switzerland"],
    "Japan": ["Japan"],
    "Latin America": ["Mexico", "Brazil", "Argentina", "Colombia", "Chile"],
    "North America": ["United States", "Canada"],
    "UK & Ireland": ["United Kingdom", "Ireland"],
    "Nordics": ["Sweden", "Norway", "Denmark", "Finland"],
    "France & Benelux": ["France", "Belgium", "Netherlands", "Luxembourg"],
    "Southeast Asia": ["Singapore", "Indonesia", "Thailand", "Vietnam", "Philippines"],
    "Africa": ["Nigeria", "Ghana", "Kenya", "South Africa"],
}
REGIONS = list(TERRITORIES)
STATUSES = ["active", "expired", "in negotiation", "terminated"]
COUNTERPARTY = {
    "recording": ["Tenantry Records Ltd"],
    "publishing": ["Harbourline Music Publishing", "Editions Mistral", "Nordklang Verlag"],
    "distribution": [
        "Orchard Bridge Distribution",
        "Sakura Digital KK",
        "Pacífico Music SA",
        "Nordlicht Vertrieb GmbH",
    ],
    "sync licence": [
        "Channel Nine Studios",
        "Lumen Pictures",
        "Pixelforge Games",
        "Brightside Advertising",
    ],
    "remix": ["Tenantry Records Ltd"],
    "producer": ["Tenantry Records Ltd"],
}
SYNC_MEDIA = ["TV series", "feature film", "video game", "advertising campaign"]
CONTRACT_SUMMARY = {
    "recording": {
        "en": "Exclusive recording agreement: the artist delivers {n} albums; the label owns "
        "the masters and pays {rate}% of net receipts after recoupment of the advance.",
        "de": "Exklusiver Künstlervertrag: der Künstler liefert {n} Alben; das Label hält die "
        "Masterrechte und zahlt {rate}% der Nettoerlöse nach Verrechnung des Vorschusses.",
    },
    "publishing": {
        "en": "Publishing administration deal: the publisher registers and collects for the "
        "artist's compositions and keeps {rate}% of collected income.",
        "de": "Verlagsvertrag (Administration): der Verlag meldet die Kompositionen an, zieht "
        "die Einnahmen ein und behält {rate}% davon.",
    },
    "distribution": {
        "en": "Digital and physical distribution of the label catalogue to shops and streaming "
        "services; distribution fee {rate}% of gross revenue.",
        "de": "Digitaler und physischer Vertrieb des Label-Katalogs an Händler und "
        "Streamingdienste; Vertriebsgebühr {rate}% vom Bruttoumsatz.",
    },
    "sync licence": {
        "en": "Synchronisation licence to use one recording in a {media}; one-off fee, "
        "{rate}% split between master and publishing sides.",
        "de": "Synchronisationslizenz für die Nutzung einer Aufnahme in einem {media}; "
        "Pauschalgebühr, {rate}% Aufteilung zwischen Master- und Verlagsseite.",
    },
    "remix": {
        "en": "Remix agreement: a flat fee and {rate}% of streaming income from the remix; the "
        "remixer waives ownership of the new master.",
        "de": "Remix-Vertrag: Pauschalhonorar und {rate}% der Streaming-Einnahmen aus dem Remix; "
        "der Remixer verzichtet auf Rechte am neuen Master.",
    },
    "producer": {
        "en": "Producer agreement: the producer is paid {n} royalty points ({rate}% of the "
        "dealer price) on the records they produced, after recoupment.",
        "de": "Produzentenvertrag: der Produzent erhält {n} Punkte ({rate}% vom "
        "Händlerabgabepreis) an den von ihm produzierten Aufnahmen, nach Verrechnung.",
    },
}
MEDIA_DE = {
    "TV series": "Fernsehserie",
    "feature film": "Kinofilm",
    "video game": "Videospiel",
    "advertising campaign": "Werbespot",
}


def contracts() -> list[Draft]:
    drafts = []
    for n in range(50):
        ctype = CONTRACT_TYPES[n % len(CONTRACT_TYPES)]
        name, genre, _, _, lang, _, _ = ARTISTS[(n * 7) % len(ARTISTS)]
        region = REGIONS[(n * 3 + n // 10) % len(REGIONS)]
        status = STATUSES[(n * 5 + n // 4) % len(STATUSES)]
        parties = COUNTERPARTY[ctype]
        counterparty = parties[(n // 6) % len(parties)]
        media = SYNC_MEDIA[(n // 6) % len(SYNC_MEDIA)] if ctype == "sync licence" else None
        # Contracts with German-speaking partners or artists are drafted in German.
        text_lang = "de" if lang == "de" or region == "DACH" else "en"
        rate = 12 + (n * 7) % 30
        summary = CONTRACT_SUMMARY[ctype][text_lang].format(
            n=2 + n % 3,
            rate=rate,
            media=(MEDIA_DE[media] if text_lang == "de" else media) if media else "",
        )
        start = 2015 + n % 10
        content: dict[str, Any] = {
            "contract_id": f"CTR-{2015 + n % 10}-{n:04d}",
            "contract_type": ctype,
            "artist": name,
            "counterparty": counterparty,
            "territories": TERRITORIES[region],
            "status": status,
            "start_date": f"{start}-{1 + n % 12:02d}-01",
            "term_years": 2 + n % 5,
            "royalty_rate_percent": rate,
            "advance_eur": (n * 2500) % 60000 if ctype in {"recording", "publishing"} else 0,
            "summary": summary,
        }
        if media:
            content["medium"] = media
        facets = {
            "kind": "contract",
            "type": ctype,
            "artist": name,
            "region": region,
            "status": status,
            "media": media,
            "genre": genre,
        }
        drafts.append(Draft(f"contract-{n:03d}", BUSINESS, "contract", text_lang, content, facets))
    return drafts


# --- schemas and pipelines, written by hand ------------------------------------------------------

# (language, schema name, description, fields, topic tags)
Hand = tuple[str, str, str, list[str], set[str]]

ROYALTY_SCHEMAS: list[Hand] = [
    (
        "en",
        "streaming_royalty_statement",
        "Monthly statement of streams per recording and DSP, with the artist's share of net "
        "receipts after the label's cut.",
        [
            "isrc",
            "dsp",
            "period",
            "stream_count",
            "gross_revenue",
            "artist_share_percent",
            "label_share_percent",
        ],
        {"streaming_split"},
    ),
    (
        "de",
        "streaming_abrechnung",
        "Monatliche Abrechnung der Streams je Aufnahme und Plattform; Anteil des Künstlers und "
        "des Labels an den Nettoerlösen.",
        [
            "isrc",
            "plattform",
            "zeitraum",
            "anzahl_streams",
            "bruttoerloes",
            "kuenstleranteil",
            "labelanteil",
        ],
        {"streaming_split"},
    ),
    (
        "en",
        "mechanical_royalty_line",
        "Mechanical royalties owed to songwriters for each CD or vinyl unit manufactured and "
        "sold, at the statutory per-unit rate.",
        ["iswc", "units_sold", "configuration", "statutory_rate", "amount_due"],
        {"mechanical"},
    ),
    (
        "fr",
        "droits_mecaniques",
        "Droits de reproduction mécanique dus aux auteurs pour chaque exemplaire physique "
        "pressé et vendu.",
        ["iswc", "exemplaires", "support", "taux", "montant"],
        {"mechanical"},
    ),
    (
        "en",
        "neighbouring_rights_claim",
        "Claims for performer and producer remuneration when recordings are broadcast on radio "
        "or played in public venues, collected by collecting societies.",
        ["isrc", "society", "broadcaster", "airplay_minutes", "performer_share", "territory"],
        {"neighbouring"},
    ),
    (
        "en",
        "recoupment_ledger",
        "Running balance of advances and recoupable costs (video budgets, tour support) "
        "against royalties earned; no royalties are paid until the balance is recouped.",
        ["artist_id", "advance", "recoupable_costs", "royalties_earned", "unrecouped_balance"],
        {"recoupment"},
    ),
    (
        "de",
        "vorschuss_verrechnung",
        "Kontostand aus Vorschüssen und verrechenbaren Kosten gegen verdiente Lizenzen; "
        "Auszahlung erst nach vollständiger Verrechnung.",
        ["kuenstler_id", "vorschuss", "kosten", "verdiente_lizenzen", "offener_saldo"],
        {"recoupment"},
    ),
    (
        "en",
        "content_id_revenue",
        "Revenue from YouTube Content ID claims on user-uploaded videos that use our recordings, "
        "per asset and month.",
        ["asset_id", "isrc", "claimed_views", "ad_revenue", "policy"],
        {"ugc"},
    ),
    (
        "en",
        "short_video_platform_revenue",
        "Income from short-form video platforms (TikTok, Instagram Reels) where users add our "
        "tracks to their clips.",
        ["platform", "isrc", "video_creations", "revenue_pool_share"],
        {"ugc"},
    ),
    (
        "en",
        "sync_fee_split",
        "How a synchronisation fee is divided between the master owner and the publishers of the "
        "composition, and then with the artist.",
        ["licence_id", "fee", "master_share", "publishing_share", "artist_share"],
        {"sync_split"},
    ),
    (
        "es",
        "reparto_sincronizacion",
        "Reparto de la tarifa de sincronización entre el propietario del máster, la editorial y "
        "el artista.",
        ["licencia", "tarifa", "parte_master", "parte_editorial", "parte_artista"],
        {"sync_split"},
    ),
    (
        "en",
        "producer_points_schedule",
        "Royalty points owed to record producers per recording, paid retroactively to the first "
        "record once the artist has recouped.",
        ["isrc", "producer", "points", "base_price", "retroactive"],
        {"producer_points"},
    ),
    (
        "en",
        "performance_royalty_cue_sheet",
        "Cue sheets reported to performing rights organisations for music used in broadcast "
        "programmes, with the duration and usage of each cue.",
        ["programme", "cue_title", "usage", "duration_seconds", "writers", "pro"],
        {"performance"},
    ),
    (
        "en",
        "royalty_payment_run",
        "A quarterly payment run: which payees are paid, in which currency, after withholding tax.",
        ["run_id", "payee_id", "currency", "gross", "withholding_tax", "net_paid"],
        {"payment_run"},
    ),
    (
        "en",
        "currency_rates_for_statements",
        "Exchange rates used to convert foreign-currency income into euros on royalty "
        "statements, one rate per currency and month.",
        ["currency", "month", "rate_to_eur", "source"],
        {"currency"},
    ),
    (
        "en",
        "neighbouring_rights_society_mandates",
        "Which collecting society represents each performer in each country for radio and "
        "public performance income.",
        ["performer_id", "country", "society", "mandate_start"],
        {"neighbouring"},
    ),
    (
        "de",
        "gema_meldung",
        "Meldung der Live-Auftritte und gespielten Werke an die Verwertungsgesellschaft für "
        "Aufführungsrechte.",
        ["veranstaltung", "datum", "werke", "spielzeit", "veranstalter"],
        {"performance"},
    ),
    (
        "en",
        "streaming_rate_per_dsp",
        "Average per-stream payout of each streaming service by country, used to forecast "
        "artist earnings.",
        ["dsp", "country", "average_per_stream", "subscription_share"],
        {"streaming_rates"},
    ),
]

USER_SCHEMAS: list[Hand] = [
    (
        "en",
        "fan_profile",
        "Profile of a registered fan on the label's fan club site: display name, favourite "
        "artists and city.",
        ["user_id", "display_name", "favourite_artists", "city", "signup_date"],
        {"fan_profile"},
    ),
    (
        "de",
        "fan_profil",
        "Profil eines registrierten Fans: Anzeigename, Lieblingskünstler, Wohnort.",
        ["nutzer_id", "anzeigename", "lieblingskuenstler", "wohnort"],
        {"fan_profile"},
    ),
    (
        "en",
        "newsletter_subscription",
        "Newsletter sign-ups with the double opt-in timestamp and the topics a subscriber chose.",
        ["email", "opt_in_confirmed_at", "topics", "source"],
        {"consent"},
    ),
    (
        "en",
        "marketing_consent_record",
        "Proof of consent for marketing messages: what the user agreed to, when, and through "
        "which form, for GDPR accountability.",
        ["user_id", "purpose", "granted", "granted_at", "form_version", "ip_address"],
        {"consent"},
    ),
    (
        "en",
        "gdpr_erasure_request",
        "A data subject's request to have personal data deleted, its deadline and the systems "
        "purged.",
        ["request_id", "user_id", "received_at", "deadline", "systems_purged", "status"],
        {"erasure"},
    ),
    (
        "de",
        "loeschantrag",
        "Antrag eines Nutzers auf Löschung seiner personenbezogenen Daten, Frist und Status.",
        ["antrag_id", "nutzer_id", "eingang", "frist", "status"],
        {"erasure"},
    ),
    (
        "en",
        "ticket_buyer",
        "Customers who bought concert tickets through the label's shop: name, email, event and "
        "seat category.",
        ["customer_id", "name", "email", "event_id", "seat_category", "order_total"],
        {"ticketing"},
    ),
    (
        "en",
        "merch_order",
        "Orders from the merchandise store: items, sizes, shipping address and payment status.",
        ["order_id", "customer_id", "items", "sizes", "shipping_address", "payment_status"],
        {"merch"},
    ),
    (
        "es",
        "pedido_tienda",
        "Pedidos de la tienda de camisetas y vinilos: artículos, dirección de envío y estado "
        "del pago.",
        ["pedido_id", "cliente_id", "articulos", "direccion_envio", "estado_pago"],
        {"merch"},
    ),
    (
        "en",
        "payee_bank_details",
        "Bank account details of artists and songwriters who receive royalty payouts: IBAN, "
        "account holder, tax residency.",
        ["payee_id", "iban", "bic", "account_holder", "tax_residency"],
        {"payee_bank"},
    ),
    (
        "en",
        "age_verification",
        "Age checks for users who want to see explicit content or buy alcohol-branded merch; "
        "stores only the verification outcome.",
        ["user_id", "method", "verified_over_18", "checked_at"],
        {"age"},
    ),
    (
        "fr",
        "verification_age",
        "Contrôle de l'âge des utilisateurs mineurs avant l'accès aux contenus explicites.",
        ["utilisateur", "methode", "majeur", "date_controle"],
        {"age"},
    ),
    (
        "en",
        "listening_event",
        "Anonymised listening events from the label's own player app: track, position, skip, "
        "device type.",
        ["session_hash", "isrc", "position_ms", "skipped", "device_type"],
        {"listening"},
    ),
    (
        "en",
        "artist_portal_account",
        "Login accounts of artists and managers on the royalty portal, with roles and "
        "two-factor settings.",
        ["account_id", "email", "role", "mfa_enabled", "last_login"],
        {"portal_account"},
    ),
    (
        "en",
        "presave_campaign_signup",
        "Fans who pre-saved an upcoming release on a streaming service, with the linked service "
        "account and country.",
        ["signup_id", "release_upc", "service", "country", "created_at"],
        {"presave"},
    ),
    (
        "de",
        "gewinnspiel_teilnahme",
        "Teilnehmer an Gewinnspielen für Konzertkarten: Kontaktdaten und Einwilligung in die "
        "Teilnahmebedingungen.",
        ["teilnehmer_id", "email", "gewinnspiel", "einwilligung", "datum"],
        {"contest"},
    ),
    (
        "en",
        "support_ticket",
        "Customer support conversations about orders and accounts, with the agent and the "
        "resolution.",
        ["ticket_id", "user_id", "subject", "agent", "resolution"],
        {"support"},
    ),
    (
        "en",
        "data_export_request",
        "Requests from users for a copy of their personal data (right of access), with the "
        "export file's location and expiry.",
        ["request_id", "user_id", "requested_at", "export_url", "expires_at"],
        {"access_request"},
    ),
]

PIPELINES: list[Hand] = [
    (
        "en",
        "loudness_normalisation",
        "Measures integrated loudness of each master (ITU-R BS.1770) and writes a gain value so "
        "playback lands at -14 LUFS; true peak limited to -1 dBTP.",
        ["input: WAV masters", "tool: ffmpeg loudnorm", "output: gain metadata"],
        {"loudness"},
    ),
    (
        "de",
        "lautheit_messung",
        "Misst die Lautheit neuer Master nach EBU R128 und meldet Dateien, die über -9 LUFS "
        "liegen, an das Mastering-Team.",
        ["eingang: Master-Dateien", "werkzeug: r128gain", "ausgabe: Bericht"],
        {"loudness"},
    ),
    (
        "en",
        "broadcast_loudness_check",
        "Checks radio edits against the broadcasters' -23 LUFS delivery rule before they are "
        "sent to stations.",
        ["input: radio edits", "output: pass/fail report"],
        {"loudness"},
    ),
    (
        "en",
        "stem_separation",
        "Splits a stereo mix into vocals, drums, bass and other instruments with a source "
        "separation model, for remix contests and karaoke versions.",
        ["model: demucs", "input: stereo master", "output: four stems"],
        {"stems", "separation"},
    ),
    (
        "en",
        "stems_ingest",
        "Ingests the multitrack stems delivered by mix engineers, checks sample rate and length, "
        "and files them per recording.",
        ["input: zipped stems", "checks: 48 kHz, equal length", "storage: object store"],
        {"stems"},
    ),
    (
        "en",
        "ddex_ern_delivery",
        "Builds DDEX ERN 4.3 release messages with audio, artwork and deal terms and uploads them "
        "to each digital service provider by SFTP.",
        ["standard: DDEX ERN 4.3", "transport: SFTP", "targets: DSPs"],
        {"ddex"},
    ),
    (
        "de",
        "ddex_auslieferung_takedown",
        "Erzeugt DDEX-Takedown-Nachrichten, wenn ein Vertrag endet, und zieht die "
        "Veröffentlichungen bei allen Plattformen zurück.",
        ["standard: DDEX ERN", "auslöser: Vertragsende"],
        {"ddex"},
    ),
    (
        "en",
        "ddex_acknowledgement_parser",
        "Reads the DSPs' DDEX acknowledgement files and marks deliveries as accepted or "
        "rejected with the reason.",
        ["input: ERN acknowledgements", "output: delivery status"],
        {"ddex"},
    ),
    (
        "en",
        "dsp_sales_report_etl",
        "Nightly ETL: downloads sales and streaming reports from Spotify, Apple Music and "
        "Deezer, normalises them and loads them into the data warehouse.",
        ["schedule: nightly 02:00 UTC", "sources: DSP reporting APIs", "sink: warehouse"],
        {"etl_sales"},
    ),
    (
        "de",
        "verkaufsberichte_import",
        "Täglicher Import der Händlerberichte für physische Tonträger in das Data Warehouse.",
        ["zeitplan: täglich", "quelle: Händler-FTP", "ziel: Warehouse"],
        {"etl_sales"},
    ),
    (
        "en",
        "audio_fingerprinting",
        "Computes acoustic fingerprints of every new master and compares them with the catalogue "
        "to catch duplicates and uncleared samples.",
        ["algorithm: chromaprint", "index: catalogue fingerprints"],
        {"fingerprint"},
    ),
    (
        "en",
        "artwork_resizing",
        "Renders cover art into the sizes each store requires (3000x3000, 1400x1400, 600x600) "
        "and checks colour space and text legibility.",
        ["input: master artwork", "outputs: JPEG and PNG renditions"],
        {"artwork"},
    ),
    (
        "de",
        "cover_pruefung",
        "Prüft Cover-Dateien auf Mindestauflösung und verbotene Inhalte wie URLs oder Preise.",
        ["eingang: Cover", "regeln: Plattform-Richtlinien"],
        {"artwork"},
    ),
    (
        "en",
        "preview_transcoding",
        "Transcodes lossless masters into AAC and MP3 for 30-second store previews and into "
        "FLAC for hi-res stores.",
        ["input: WAV 24-bit", "outputs: AAC 256k, MP3 320k, FLAC"],
        {"transcode"},
    ),
    (
        "en",
        "royalty_currency_conversion",
        "Converts each statement line from the reporting currency into euros using the month's "
        "ECB reference rate.",
        ["input: statement lines", "rates: ECB", "output: EUR amounts"],
        {"currency"},
    ),
    (
        "fr",
        "synchro_paroles",
        "Aligne les paroles sur l'audio ligne par ligne pour produire des fichiers LRC "
        "synchronisés destinés aux plateformes.",
        ["entrée: paroles et audio", "sortie: LRC horodaté"],
        {"lyrics_sync"},
    ),
    (
        "en",
        "lyrics_ingest",
        "Collects lyrics from songwriters, checks explicit-content flags and sends time-synced "
        "lyrics to Musixmatch.",
        ["input: lyric sheets", "output: synced lyrics"],
        {"lyrics_sync"},
    ),
    (
        "en",
        "dolby_atmos_render",
        "Renders Dolby Atmos ADM files from immersive mixes and validates them for Apple Music "
        "and Amazon spatial audio delivery.",
        ["input: ADM BWF", "validation: Dolby renderer"],
        {"atmos"},
    ),
    (
        "en",
        "isrc_assignment",
        "Assigns ISRC codes to new recordings from the label's registrant prefix and records "
        "them before release.",
        ["prefix: DE-TNY", "output: ISRC registry"],
        {"isrc"},
    ),
    (
        "de",
        "isrc_validierung",
        "Prüft vor jeder Veröffentlichung, ob ISRC-Codes gültig, eindeutig und keiner anderen "
        "Aufnahme zugeordnet sind.",
        ["eingang: Release-Metadaten", "ausgabe: Fehlerliste"],
        {"isrc"},
    ),
    (
        "en",
        "session_archive_backup",
        "Backs up the raw multitrack recording sessions (Pro Tools, Ableton) to cold storage "
        "weekly, with checksums.",
        ["schedule: weekly", "target: cold storage", "verification: SHA-256"],
        {"backup"},
    ),
    (
        "en",
        "metadata_validation",
        "Validates release metadata (titles, artist names, genres, credits) against store style "
        "guides before delivery.",
        ["rules: store style guides", "output: validation report"],
        {"metadata_qc"},
    ),
    (
        "en",
        "royalty_statement_generation",
        "Generates PDF and CSV royalty statements per payee each quarter from the warehouse.",
        ["schedule: quarterly", "outputs: PDF, CSV"],
        {"statements"},
    ),
    (
        "en",
        "playlist_tracking",
        "Polls editorial playlists daily and records when label tracks are added or removed.",
        ["sources: Spotify, Apple Music", "output: playlist events"],
        {"playlists"},
    ),
    (
        "en",
        "social_stats_ingest",
        "Collects follower counts and engagement from Instagram, TikTok and YouTube for each "
        "artist.",
        ["schedule: daily", "sink: warehouse"],
        {"social"},
    ),
    (
        "es",
        "conversion_formatos_audio",
        "Convierte los másters sin pérdida a formatos comprimidos (AAC y MP3) para las "
        "previsualizaciones de las tiendas.",
        ["entrada: WAV", "salidas: AAC, MP3"],
        {"transcode"},
    ),
    (
        "en",
        "sample_clearance_tracker",
        "Tracks requests to clear samples used in new recordings, with the rights holders "
        "contacted and the fees agreed.",
        ["input: sample reports", "output: clearance status"],
        {"sample_clearance"},
    ),
    (
        "en",
        "catalogue_search_index",
        "Rebuilds the internal catalogue search index from the metadata store every hour.",
        ["schedule: hourly", "sink: search index"],
        {"search_index"},
    ),
    (
        "en",
        "stems_for_sync_packaging",
        "Packages instrumental versions and stems of sync-cleared tracks for music supervisors.",
        ["input: stems", "output: sync package"],
        {"stems"},
    ),
    (
        "de",
        "mastering_warteschlange",
        "Verteilt neue Mixe an die Mastering-Ingenieure und verfolgt Abnahmen und Revisionen.",
        ["eingang: Mixe", "ausgabe: freigegebene Master"],
        {"mastering_queue"},
    ),
]


def hand_written() -> list[Draft]:
    drafts = []
    for prefix, mtype, items in (
        ("royalty", SCHEMA, ROYALTY_SCHEMAS),
        ("userdata", SCHEMA, USER_SCHEMAS),
        ("pipeline", TECHNICAL, PIPELINES),
    ):
        for n, (lang, name, description, fields, tags) in enumerate(items):
            content: dict[str, Any]
            if mtype == SCHEMA:
                content = {
                    "name": name,
                    "description": description,
                    "version": 1 + n % 4,
                    "fields": [
                        {
                            "name": f,
                            "type": "decimal"
                            if any(w in f for w in ("revenue", "rate", "share", "amount", "fee"))
                            else "string",
                        }
                        for f in fields
                    ],
                    "owner": "royalties team" if prefix == "royalty" else "data protection",
                }
                schema_name = "royalty_schema" if prefix == "royalty" else "user_data_schema"
            else:
                content = {
                    "name": name,
                    "description": description,
                    "steps": fields,
                    "owner": "platform engineering",
                    "runtime": ["Airflow", "Dagster", "Kubernetes CronJob"][n % 3],
                }
                schema_name = "pipeline"
            facets = {"kind": prefix, "tags": tags}
            drafts.append(Draft(f"{prefix}-{n:03d}", mtype, schema_name, lang, content, facets))
    return drafts


# --- queries -------------------------------------------------------------------------------------

Predicate = Callable[[Facets], bool]


def track(**want: Any) -> Predicate:
    """A track whose facets have these values (a set means any of them)."""

    def accept(f: Facets) -> bool:
        return f["kind"] == "track" and all(
            f[k] in v if isinstance(v, set) else f[k] == v for k, v in want.items()
        )

    return accept


def of(kind: str, **want: Any) -> Predicate:
    def accept(f: Facets) -> bool:
        return f["kind"] == kind and all(
            f[k] in v if isinstance(v, set) else f[k] == v for k, v in want.items()
        )

    return accept


def tagged(kind: str | set[str], tag: str) -> Predicate:
    kinds = {kind} if isinstance(kind, str) else kind
    return lambda f: f["kind"] in kinds and tag in f["tags"]


ASIA = {"Japan", "Southeast Asia"}

# (text, language, predicate): the predicate is the query's intent, stated over facets.
QUERIES: list[tuple[str, str, Predicate]] = [
    # tracks
    (
        "gloomy, menacing warehouse rave music",
        "en",
        track(genre="techno", mood="dark"),
    ),
    ("traurige Klavierstücke ohne Gesang", "de", track(genre="neoclassical", mood="melancholic")),
    (
        "feel-good dance tunes with West African rhythms",
        "en",
        track(genre="afrobeats", mood={"euphoric", "uplifting"}),
    ),
    ("Rap-Songs mit expliziten Texten", "de", track(genre="hip hop", explicit=True)),
    ("relaxing soundscapes to meditate to", "en", track(genre="ambient", mood={"calm", "dreamy"})),
    ("Liebeslieder mit spanischem Text", "de", track(lyrics="es", mood="romantic")),
    ("canciones tristes de indie pop", "es", track(genre="indie pop", mood="melancholic")),
    ("jazz paisible pour un dîner", "fr", track(genre="jazz", mood={"calm", "romantic"})),
    ("furious heavy guitar music", "en", track(genre="metal", mood="aggressive")),
    (
        "ruhige Instrumentalstücke, die wir für Werbung lizenzieren dürfen",
        "de",
        track(instrumental=True, sync=True, mood="calm"),
    ),
    ("hazy eighties-style synth songs", "en", track(genre="synthwave", mood="dreamy")),
    (
        "energiegeladener Reggaeton für die Tanzfläche",
        "de",
        track(genre="reggaeton", mood={"euphoric", "uplifting"}),
    ),
    ("songs with French lyrics", "en", track(lyrics="fr")),
    ("düstere Synthwave-Nummern", "de", track(genre="synthwave", mood="dark")),
    ("hopeful pop songs with singing", "en", track(genre={"pop", "indie pop"}, mood="uplifting")),
    (
        "verträumte Ambient-Flächen von deutschen Künstlern",
        "de",
        track(genre="ambient", mood="dreamy", country="DE"),
    ),
    ("Lieder von Maeve Donnelly", "de", track(artist="Maeve Donnelly")),
    ("K-pop tracks sung in Korean", "en", track(lyrics="ko")),
    # albums
    ("Live-Mitschnitte von Konzerten", "de", of("album", format="live album")),
    (
        "remastered anniversary editions with bonus material",
        "en",
        of("album", format="deluxe reissue"),
    ),
    (
        "Alben, auf denen andere Produzenten die Songs neu abmischen",
        "de",
        of("album", format="remix album"),
    ),
    ("recopilatorios de grandes éxitos", "es", of("album", format="compilation")),
    ("mini-albums of just a handful of tracks", "en", of("album", format="EP")),
    ("Schallplatten von Jazz-Ensembles", "de", of("album", genre="jazz", vinyl=True)),
    # artists
    ("Elektronik-Acts aus Deutschland", "de", of("artist", genre=ELECTRONIC, country="DE")),
    ("acoustic traditional musicians", "en", of("artist", genre="folk")),
    ("artists from West Africa", "en", of("artist", country={"GH", "NG"})),
    ("französischsprachige Rapper", "de", of("artist", genre="hip hop", lang="fr")),
    ("groupes et formations de jazz", "fr", of("artist", genre="jazz")),
    ("acts from Latin America", "en", of("artist", country={"CO", "AR"})),
    ("Künstler aus Skandinavien und Island", "de", of("artist", country={"NO", "IS"})),
    ("heavy metal bands", "en", of("artist", genre="metal")),
    # contracts
    (
        "Vertriebsverträge, die nur für asiatische Märkte gelten",
        "de",
        of("contract", type="distribution", region=ASIA),
    ),
    ("lapsed publishing deals", "en", of("contract", type="publishing", status="expired")),
    (
        "licences for using our music in video games",
        "en",
        of("contract", type="sync licence", media="video game"),
    ),
    (
        "Plattenverträge, über die noch verhandelt wird",
        "de",
        of("contract", type="recording", status="in negotiation"),
    ),
    ("agreements limited to Germany, Austria and Switzerland", "en", of("contract", region="DACH")),
    ("contrats de remix en vigueur", "fr", of("contract", type="remix", status="active")),
    (
        "acuerdos de distribución solo para Latinoamérica",
        "es",
        of("contract", type="distribution", region="Latin America"),
    ),
    ("Produzentenverträge mit Umsatzpunkten", "de", of("contract", type="producer")),
    (
        "placements of songs in television shows",
        "en",
        of("contract", type="sync licence", media="TV series"),
    ),
    ("alle Verträge mit Nachtfalter", "de", of("contract", artist="Nachtfalter")),
    (
        "gekündigte Synchronisationslizenzen",
        "de",
        of("contract", type="sync licence", status="terminated"),
    ),
    ("deals restricted to the Nordic countries", "en", of("contract", region="Nordics")),
    # royalty schemas
    (
        "Aufteilung der Streaming-Erlöse zwischen Künstler und Label",
        "de",
        tagged("royalty", "streaming_split"),
    ),
    ("how songwriters are paid for physical copies pressed", "en", tagged("royalty", "mechanical")),
    ("Vergütung für Interpreten bei Radioeinsätzen", "de", tagged("royalty", "neighbouring")),
    ("paying back the advance from earnings", "en", tagged("royalty", "recoupment")),
    ("income when fans use our songs in their own videos", "en", tagged("royalty", "ugc")),
    ("partage des revenus de synchronisation", "fr", tagged("royalty", "sync_split")),
    (
        "Abrechnungsschema für Produzentenpunkte je Aufnahme",
        "de",
        tagged("royalty", "producer_points"),
    ),
    (
        "Meldungen der aufgeführten Werke an die Verwertungsgesellschaften der Urheber",
        "de",
        tagged("royalty", "performance"),
    ),
    # user-data schemas
    ("Schema für Benutzerprofile von Fans", "de", tagged("userdata", "fan_profile")),
    ("where we record permission to send promotional emails", "en", tagged("userdata", "consent")),
    ("Löschanfragen nach DSGVO", "de", tagged("userdata", "erasure")),
    ("customer data of people buying concert tickets", "en", tagged("userdata", "ticketing")),
    ("Bankverbindung für Lizenzauszahlungen", "de", tagged("userdata", "payee_bank")),
    ("Altersprüfung für minderjährige Nutzer", "de", tagged("userdata", "age")),
    ("datos de pedidos de la tienda de merchandising", "es", tagged("userdata", "merch")),
    (
        "users asking for a copy of everything we store about them",
        "en",
        tagged("userdata", "access_request"),
    ),
    # pipelines
    ("Lautheitsprüfung der Master", "de", tagged("pipeline", "loudness")),
    ("splitting a mix into separate instrument tracks", "en", tagged("pipeline", "separation")),
    ("Auslieferung an Streamingdienste im DDEX-Format", "de", tagged("pipeline", "ddex")),
    ("nightly import of store sales reports into analytics", "en", tagged("pipeline", "etl_sales")),
    ("detecting duplicate recordings by their audio", "en", tagged("pipeline", "fingerprint")),
    ("Cover-Bilder für die Shops aufbereiten", "de", tagged("pipeline", "artwork")),
    ("compressing masters into lossy formats for previews", "en", tagged("pipeline", "transcode")),
    ("Währungsumrechnung für Abrechnungen", "de", tagged({"pipeline", "royalty"}, "currency")),
    ("synchronisation des paroles ligne par ligne", "fr", tagged("pipeline", "lyrics_sync")),
    ("immersive spatial audio mixes", "en", tagged("pipeline", "atmos")),
    ("Vergabe und Prüfung der ISRC-Codes", "de", tagged("pipeline", "isrc")),
    ("Sicherung der Rohaufnahmen aus dem Studio", "de", tagged("pipeline", "backup")),
]

# The same six intents in three of the platform's languages that the Universal Sentence
# Encoder was not trained on (Swedish, Czech, Greek): they measure coverage, not the catalogue.
SIX_INTENTS: list[tuple[Predicate, dict[str, str]]] = [
    (
        track(genre="neoclassical", mood="melancholic"),
        {
            "sv": "sorgsna pianostycken utan sång",
            "cs": "smutné klavírní skladby bez zpěvu",
            "el": "μελαγχολικά κομμάτια πιάνου χωρίς φωνή",
        },
    ),
    (
        of("album", format="live album"),
        {
            "sv": "livealbum inspelade på konserter",
            "cs": "živé nahrávky z koncertů",
            "el": "ζωντανές ηχογραφήσεις από συναυλίες",
        },
    ),
    (
        of("contract", type="distribution", region=ASIA),
        {
            "sv": "distributionsavtal enbart för asiatiska marknader",
            "cs": "distribuční smlouvy jen pro asijské trhy",
            "el": "συμβόλαια διανομής μόνο για τις ασιατικές αγορές",  # noqa: RUF001 (Greek)
        },
    ),
    (
        tagged("userdata", "erasure"),
        {
            "sv": "begäran om radering av personuppgifter",
            "cs": "žádosti o výmaz osobních údajů",
            "el": "αιτήματα διαγραφής προσωπικών δεδομένων",
        },
    ),
    (
        tagged("pipeline", "loudness"),
        {
            "sv": "kontroll av ljudstyrkan i masterfilerna",
            "cs": "kontrola hlasitosti masterů",
            "el": "έλεγχος της έντασης του ήχου στα master",
        },
    ),
    (
        tagged("royalty", "streaming_split"),
        {
            "sv": "fördelning av streamingintäkter mellan artist och skivbolag",
            "cs": "rozdělení příjmů ze streamování mezi umělce a vydavatelství",
            "el": "κατανομή των εσόδων από streaming μεταξύ καλλιτέχνη και δισκογραφικής",
        },
    ),
]
QUERIES += [
    (text, language, predicate)
    for predicate, texts in SIX_INTENTS
    for language, text in texts.items()
]

MAX_RELEVANT = 10


def mentions(value: str) -> Callable[[Draft], bool]:
    """A record that names ``value`` in its content (a title in a tracklist counts)."""
    return lambda d: value in json.dumps(d.content, ensure_ascii=False)


#: Known-item queries: what a label's staff types when they know the thing by name (an artist,
#: a title, a contract's number). Names have no language; they are tagged en and de in turn,
#: as English- and German-speaking staff would type them. Relevant: every record naming it.
KNOWN_ITEMS: list[tuple[str, str, Callable[[Draft], bool]]] = [
    ("Zanele Dube", "en", mentions("Zanele Dube")),
    ("Grid Theory", "de", mentions("Grid Theory")),
    ("Kern & Klang", "en", mentions("Kern & Klang")),
    ("Ada Okafor", "de", mentions("Ada Okafor")),
    ("Stille Wasser", "en", mentions("Stille Wasser")),
    ("K-Dot Weiss", "de", mentions("K-Dot Weiss")),
    ("Hollow Mirror", "en", mentions("Hollow Mirror")),
    ("Leise Brücke", "de", mentions("Leise Brücke")),
    ("Distant Frequency", "en", mentions("Distant Frequency")),
    ("Neon Mirror", "de", mentions("Neon Mirror")),
    ("CTR-2015-0000", "en", mentions("CTR-2015-0000")),
    ("CTR-2017-0002", "de", mentions("CTR-2017-0002")),
]


def build() -> tuple[list[Draft], list[dict[str, Any]]]:
    rng = random.Random(14)
    track_drafts = tracks(rng)
    by_artist: dict[str, list[Draft]] = {}
    for t in track_drafts:
        by_artist.setdefault(t.content["artist"], []).append(t)
    drafts = artists() + track_drafts + albums(by_artist) + contracts() + hand_written()
    queries = []
    for text, language, predicate in QUERIES:
        relevant = sorted(d.key for d in drafts if predicate(d.facets))
        if not 1 <= len(relevant) <= MAX_RELEVANT:
            raise ValueError(f"query {text!r} has {len(relevant)} relevant records")
        queries.append({"text": text, "language": language, "relevant": relevant})
    for text, language, names in KNOWN_ITEMS:
        relevant = sorted(d.key for d in drafts if names(d))
        if not 1 <= len(relevant) <= MAX_RELEVANT:
            raise ValueError(f"query {text!r} has {len(relevant)} relevant records")
        queries.append({"text": text, "language": language, "relevant": relevant})
    return drafts, queries


def main() -> None:
    drafts, queries = build()
    records = [
        {
            "key": d.key,
            "metadata_type": d.metadata_type,
            "schema_name": d.schema_name,
            "language": d.language,
            "content": d.content,
        }
        for d in drafts
    ]
    for name, data in (("records.json", records), ("queries.json", queries)):
        text = json.dumps(data, ensure_ascii=False, indent=1) + "\n"
        (HERE / name).write_text(text, encoding="utf-8")
    print(f"{len(records)} records, {len(queries)} queries")


if __name__ == "__main__":
    main()
