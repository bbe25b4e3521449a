/** Word lists for the fake users, per nationality. */
export interface Nationality {
  nat: string;
  country: string;
  states: readonly string[];
  cities: readonly string[];
  /** true: numeric postcodes; false: text ones (the source mixes both). */
  numericPostcode: boolean;
  phone: (r: () => number) => string;
  idName: string;
}

const digits = (r: () => number, n: number) => Array.from({ length: n }, () => Math.floor(r() * 10)).join("");

export const NATIONALITIES: readonly Nationality[] = [
  {
    nat: "AU",
    country: "Australia",
    states: ["New South Wales", "Victoria", "Queensland", "Tasmania"],
    cities: ["Sydney", "Melbourne", "Brisbane", "Hobart", "Geelong"],
    numericPostcode: true,
    phone: (r) => `0${digits(r, 1)}-${digits(r, 4)}-${digits(r, 4)}`,
    idName: "TFN",
  },
  {
    nat: "BR",
    country: "Brazil",
    states: ["Bahia", "Paraná", "São Paulo", "Ceará"],
    cities: ["Salvador", "Curitiba", "Campinas", "Fortaleza"],
    numericPostcode: true,
    phone: (r) => `(${digits(r, 2)}) ${digits(r, 4)}-${digits(r, 4)}`,
    idName: "CPF",
  },
  {
    nat: "CA",
    country: "Canada",
    states: ["Ontario", "Québec", "Alberta", "Nunavut"],
    cities: ["Toronto", "Montréal", "Calgary", "Iqaluit"],
    numericPostcode: false,
    phone: (r) => `Y${digits(r, 2)} ${digits(r, 3)}-${digits(r, 4)}`,
    idName: "SIN",
  },
  {
    nat: "DE",
    country: "Germany",
    states: ["Bayern", "Hessen", "Sachsen", "Berlin"],
    cities: ["München", "Frankfurt", "Leipzig", "Berlin"],
    numericPostcode: true,
    phone: (r) => `0${digits(r, 3)}-${digits(r, 7)}`,
    idName: "SVNR",
  },
  {
    nat: "FR",
    country: "France",
    states: ["Bretagne", "Normandie", "Corse", "Alsace"],
    cities: ["Rennes", "Rouen", "Ajaccio", "Strasbourg"],
    numericPostcode: true,
    phone: (r) => `0${digits(r, 1)}-${digits(r, 2)}-${digits(r, 2)}-${digits(r, 2)}-${digits(r, 2)}`,
    idName: "INSEE",
  },
  {
    nat: "GB",
    country: "United Kingdom",
    states: ["Kent", "Devon", "Cumbria", "Fife"],
    cities: ["Canterbury", "Exeter", "Carlisle", "St Andrews"],
    numericPostcode: false,
    phone: (r) => `0${digits(r, 3)} ${digits(r, 3)} ${digits(r, 4)}`,
    idName: "NINO",
  },
  {
    nat: "NO",
    country: "Norway",
    states: ["Vestland", "Nordland", "Oslo", "Troms"],
    cities: ["Bergen", "Bodø", "Oslo", "Tromsø"],
    numericPostcode: true,
    phone: (r) => `${digits(r, 8)}`,
    idName: "FN",
  },
  {
    nat: "US",
    country: "United States",
    states: ["Ohio", "Texas", "Oregon", "Maine"],
    cities: ["Dayton", "Austin", "Salem", "Portland"],
    numericPostcode: true,
    phone: (r) => `(${digits(r, 3)}) ${digits(r, 3)}-${digits(r, 4)}`,
    idName: "SSN",
  },
];

export const FIRST_NAMES = {
  male: ["Liam", "Noah", "Lucas", "Mateo", "Élie", "Jonas", "Oskar", "Rafael", "Hugo", "Ethan", "Arthur", "Øyvind"],
  female: ["Emma", "Olivia", "Mia", "Sofia", "Léa", "Ingrid", "Chloé", "Ana", "Zoë", "Hannah", "Amelia", "Åse"],
} as const;

export const LAST_NAMES = [
  "Smith",
  "Martin",
  "Müller",
  "Silva",
  "Dubois",
  "Hansen",
  "Brown",
  "Tremblay",
  "Rossi",
  "O'Connor",
  "García",
  "Nguyen",
  "Walker",
  "Lefèvre",
  "Berg",
] as const;

export const STREET_NAMES = [
  "Main Street",
  "Rue de la Paix",
  "Hauptstraße",
  "Rua Sete",
  "King Road",
  "Storgata",
  "Maple Ave",
  "High Street",
  "Church Lane",
] as const;

export const TIMEZONES = [
  { offset: "-5:00", description: "Eastern Time (US & Canada), Bogota, Lima" },
  { offset: "+1:00", description: "Brussels, Copenhagen, Madrid, Paris" },
  { offset: "+9:30", description: "Adelaide, Darwin" },
  { offset: "0:00", description: "Western Europe Time, London, Lisbon, Casablanca" },
  { offset: "-3:00", description: "Brazil, Buenos Aires, Georgetown" },
] as const;
