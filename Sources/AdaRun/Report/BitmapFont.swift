// A small built-in bitmap font for the report images (Linux has no system drawing or text APIs).
//
// Glyphs are 5 columns × 8 rows in a 6 × 10 cell (1 column and 2 rows of spacing): rows 0–6 hold capitals,
// digits and ascenders, row 7 the descenders of g, j, p, q, y and ','. Each glyph is a UInt64 literal with
// one byte per row, row 0 in the most significant byte; in a row, bit 4 is the leftmost column.
// Characters without a glyph draw a hollow box, so an unexpected name still shows that something is there.

public enum BitmapFont {
    /// Ink columns and rows of a glyph (unscaled).
    public static let glyphWidth = 5
    public static let glyphHeight = 8
    /// Horizontal distance from one character to the next, and from one text line to the next (unscaled).
    public static let advance = 6
    public static let lineHeight = 10
    /// Rows above the baseline (capitals and digits are this tall).
    public static let capHeight = 7

    /// The drawn box for a character with no glyph.
    public static let missingGlyph: UInt64 = 0x1F_11_11_11_11_11_1F_00

    private static let glyphs: [Character: UInt64] = [
        " ": 0,
        "0": 0x0E_11_13_15_19_11_0E_00, "1": 0x04_0C_04_04_04_04_0E_00, "2": 0x0E_11_01_02_04_08_1F_00,
        "3": 0x1F_02_04_02_01_11_0E_00, "4": 0x02_06_0A_12_1F_02_02_00, "5": 0x1F_10_1E_01_01_11_0E_00,
        "6": 0x06_08_10_1E_11_11_0E_00, "7": 0x1F_01_02_04_08_08_08_00, "8": 0x0E_11_11_0E_11_11_0E_00,
        "9": 0x0E_11_11_0F_01_02_0C_00,

        "A": 0x0E_11_11_11_1F_11_11_00, "B": 0x1E_11_11_1E_11_11_1E_00, "C": 0x0E_11_10_10_10_11_0E_00,
        "D": 0x1C_12_11_11_11_12_1C_00, "E": 0x1F_10_10_1E_10_10_1F_00, "F": 0x1F_10_10_1E_10_10_10_00,
        "G": 0x0E_11_10_17_11_11_0F_00, "H": 0x11_11_11_1F_11_11_11_00, "I": 0x0E_04_04_04_04_04_0E_00,
        "J": 0x07_02_02_02_02_12_0C_00, "K": 0x11_12_14_18_14_12_11_00, "L": 0x10_10_10_10_10_10_1F_00,
        "M": 0x11_1B_15_15_11_11_11_00, "N": 0x11_11_19_15_13_11_11_00, "O": 0x0E_11_11_11_11_11_0E_00,
        "P": 0x1E_11_11_1E_10_10_10_00, "Q": 0x0E_11_11_11_15_12_0D_00, "R": 0x1E_11_11_1E_14_12_11_00,
        "S": 0x0F_10_10_0E_01_01_1E_00, "T": 0x1F_04_04_04_04_04_04_00, "U": 0x11_11_11_11_11_11_0E_00,
        "V": 0x11_11_11_11_11_0A_04_00, "W": 0x11_11_11_15_15_15_0A_00, "X": 0x11_11_0A_04_0A_11_11_00,
        "Y": 0x11_11_11_0A_04_04_04_00, "Z": 0x1F_01_02_04_08_10_1F_00,

        "a": 0x00_00_0E_01_0F_11_0F_00, "b": 0x10_10_16_19_11_11_1E_00, "c": 0x00_00_0E_10_10_11_0E_00,
        "d": 0x01_01_0D_13_11_11_0F_00, "e": 0x00_00_0E_11_1F_10_0E_00, "f": 0x06_09_08_1C_08_08_08_00,
        "g": 0x00_00_0F_11_11_0F_01_0E, "h": 0x10_10_16_19_11_11_11_00, "i": 0x04_00_0C_04_04_04_0E_00,
        "j": 0x02_00_06_02_02_02_12_0C, "k": 0x10_10_12_14_18_14_12_00, "l": 0x0C_04_04_04_04_04_0E_00,
        "m": 0x00_00_1A_15_15_11_11_00, "n": 0x00_00_16_19_11_11_11_00, "o": 0x00_00_0E_11_11_11_0E_00,
        "p": 0x00_00_1E_11_11_1E_10_10, "q": 0x00_00_0F_11_11_0F_01_01, "r": 0x00_00_16_19_10_10_10_00,
        "s": 0x00_00_0F_10_0E_01_1E_00, "t": 0x08_08_1C_08_08_09_06_00, "u": 0x00_00_11_11_11_13_0D_00,
        "v": 0x00_00_11_11_11_0A_04_00, "w": 0x00_00_11_11_15_15_0A_00, "x": 0x00_00_11_0A_04_0A_11_00,
        "y": 0x00_00_11_11_11_0F_01_0E, "z": 0x00_00_1F_02_04_08_1F_00,

        ".": 0x00_00_00_00_00_0C_0C_00, ",": 0x00_00_00_00_00_0C_04_08, ":": 0x00_0C_0C_00_0C_0C_00_00,
        ";": 0x00_0C_0C_00_0C_04_08_00, "-": 0x00_00_00_0E_00_00_00_00, "+": 0x00_04_04_1F_04_04_00_00,
        "=": 0x00_00_1F_00_1F_00_00_00, "%": 0x18_19_02_04_08_13_03_00, "/": 0x00_01_02_04_08_10_00_00,
        "\\": 0x00_10_08_04_02_01_00_00, "_": 0x00_00_00_00_00_00_1F_00, "(": 0x02_04_08_08_08_04_02_00,
        ")": 0x08_04_02_02_02_04_08_00, "[": 0x0E_08_08_08_08_08_0E_00, "]": 0x0E_02_02_02_02_02_0E_00,
        "<": 0x02_04_08_10_08_04_02_00, ">": 0x08_04_02_01_02_04_08_00, "!": 0x04_04_04_04_04_00_04_00,
        "?": 0x0E_11_01_02_04_00_04_00, "@": 0x0E_11_01_0D_15_15_0E_00, "#": 0x0A_0A_1F_0A_1F_0A_0A_00,
        "*": 0x00_04_15_0E_15_04_00_00, "&": 0x0C_12_14_08_15_12_0D_00, "'": 0x04_04_08_00_00_00_00_00,
        "\"": 0x0A_0A_0A_00_00_00_00_00, "|": 0x04_04_04_04_04_04_04_00, "^": 0x04_0A_11_00_00_00_00_00,
        "~": 0x00_00_08_15_02_00_00_00, "$": 0x04_0F_14_0E_05_1E_04_00,
        "×": 0x00_11_0A_04_0A_11_00_00, "·": 0x00_00_00_0C_0C_00_00_00, "±": 0x04_04_1F_04_04_00_1F_00,
        "…": 0x00_00_00_00_00_00_15_00, "−": 0x00_00_00_1F_00_00_00_00,
    ]

    public static func hasGlyph(_ character: Character) -> Bool { glyphs[character] != nil }

    /// The glyph rows of `character` (the hollow box when there is none).
    public static func glyph(_ character: Character) -> UInt64 { glyphs[character] ?? missingGlyph }

    /// Width in pixels of `text` on one line, without the trailing spacing column.
    public static func width(of text: String, scale: Int = 1) -> Int {
        let count = text.count
        return count == 0 ? 0 : (count * advance - 1) * scale
    }

    /// Calls `ink(x, y)` once per inked pixel of `text`, with (0, 0) the top-left of the first cell and x
    /// growing to the right; each font pixel becomes a `scale` × `scale` block. Newlines start a new line.
    public static func forEachInkPixel(in text: String, scale: Int = 1, _ ink: (Int, Int) -> Void) {
        precondition(scale >= 1, "BitmapFont: scale \(scale) must be at least 1")
        var column = 0, line = 0
        for character in text {
            if character == "\n" { column = 0; line += 1; continue }
            let bits = glyph(character)
            if bits != 0 {
                let originX = column * advance * scale, originY = line * lineHeight * scale
                for row in 0..<glyphHeight {
                    let rowBits = Int((bits >> UInt64(8 * (glyphHeight - 1 - row))) & 0x1F)
                    if rowBits == 0 { continue }
                    for col in 0..<glyphWidth where rowBits & (0x10 >> col) != 0 {
                        for dy in 0..<scale { for dx in 0..<scale { ink(originX + col * scale + dx, originY + row * scale + dy) } }
                    }
                }
            }
            column += 1
        }
    }
}
